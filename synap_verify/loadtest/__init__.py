"""Load runs with Locust, and the migration measured under load (PRD 5.3, zero downtime).

``orchestrate`` starts the API and Locust and runs the migration while the load runs; ``timeline``
reads the per-request record Locust leaves, ``blocking`` samples lock waits in the database,
``verdict`` turns both into findings and ``plot`` draws them. ``docs/load.md`` says what it proves.
"""

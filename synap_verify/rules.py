"""Every rule a check may report, in one place: what fires it, why it matters, how to fix it.

A check reports a finding only under a registered id (:class:`~synap_verify.findings.Finding` refuses
any other, so a typo fails the first test that reaches it); the docs' rule tables are generated from
here by :mod:`synap_verify.ruledocs`; and
``tests/test_rules.py`` demands a doc entry and a seeded-defect test for every id. Adding a rule is
adding one :class:`Rule` to the list below (and its family to ``FAMILIES`` if it starts a new one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """A set of rules one command reports, documented in one table of one file under docs/."""

    name: str
    doc: str  # file under docs/ holding the family's generated table
    title: str  # what the table lists, for the generated block's header comment


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("contract", "contract.md", "the contract's rules (synap-verify contract)"),
    Family("rls", "rls.md", "the static RLS lints (synap-verify rls)"),
    Family("probe", "rls.md", "the live RLS probes (synap-verify rls)"),
    Family("equivalence", "equivalence.md", "data equivalence (synap-verify equivalence, the integrity suite)"),
    Family("preflight", "equivalence.md", "preflight on the legacy data (synap-verify preflight)"),
    Family("bench", "benchmarks.md", "the G6 performance gate (synap-verify bench, the bench suite)"),
    Family("load", "load.md", "the load test and zero-downtime verdict (synap-verify load)"),
    Family("plan", "plan.md", "what the planner cannot decide (synap-verify plan)"),
)}


@dataclass(frozen=True)
class Rule:
    """One rule id: the unit a finding is reported under and documented by."""

    id: str
    family: str
    when: str  # what fires it
    why: str  # why that matters, in one line
    fix: str  # what to do about it
    params: tuple[str, ...] = ()  # keys accepted under ``rules.<id>`` in a contract file (contract rules only)

    @property
    def doc(self) -> str:
        """Where the rule is documented: ``docs/<file>#<anchor>``."""
        return f"docs/{FAMILIES[self.family].doc}#{self.id.lower()}"


_RULES = (
    # contract: synap_verify/contract/check.py; G1-G9 are the specification's global rules
    Rule("G1", "contract", "a column has a forbidden type (`json`)",
         "json is re-parsed on every read and cannot be indexed by GIN",
         "`ALTER … TYPE jsonb USING col::jsonb` (clean `\\u0000` first)", ("forbidden_types", "expected_type")),
    Rule("G2", "contract", "a column is `timestamp without time zone`",
         "a naive timestamp means whatever the writer's TimeZone meant",
         "`ALTER … TYPE timestamptz USING col AT TIME ZONE 'UTC'` (never rely on the session TimeZone)",
         ("forbidden_types", "expected_type")),
    Rule("G3", "contract", "a column is named `meta_data`", "one name per concept across the schema",
         "rename it `metadata` (keep `meta_data` in the API during the transition)", ("renamed_columns",)),
    Rule("G4", "contract", "an FK has NO ACTION (or an action not in `allowed_actions`); duplicated or conflicting "
         "FK constraints on the same columns; ON DELETE SET NULL on a NOT NULL column, or the contract asking SET "
         "NULL of a NOT NULL column (for every FK the contract expects, present or missing)",
         "a delete either fails late or leaves orphans; the schema must say what happens",
         "drop the duplicates, keep one FK with the expected action (the message names it); SET NULL is never "
         "advised for a NOT NULL column: make the column nullable and keep SET NULL, or choose another action",
         ("allowed_actions", "classes", "targets", "defaults")),
    Rule("G5", "contract", "a tenant table lost `tenant_id`, has it nullable, has RLS disabled or not forced, lacks "
         "permissive policies granting SELECT/INSERT/UPDATE/DELETE, has an ALL or INSERT policy without WITH CHECK, "
         "a policy that does not compare `tenant_id` with the tenant context or is always true; or the application "
         "role is superuser, BYPASSRLS or owner",
         "one tenant could read or write another's rows",
         "`ENABLE` + `FORCE ROW LEVEL SECURITY`, one policy per command (or ALL with USING and WITH CHECK) on "
         "`tenant_id = current_tenant_id()`", ("tenant_column", "tenant_settings", "tenant_functions", "app_role")),
    Rule("G6", "contract", "a column the workload filters on has no valid GIN index",
         "the jsonb containment queries fall back to sequential scans",
         "`CREATE INDEX CONCURRENTLY … USING gin (col)`", ("method",)),
    Rule("G7", "contract", "nothing ties a child's `tenant_id` to its parent's (declared in `tenant_parents`)",
         "a child row can drift to another tenant than its parent's",
         "composite FK `(parent_id, tenant_id) → parent (id, tenant_id)`, or a trigger whose name matches "
         "`G7.trigger_pattern` (default `tenant`)", ("trigger_pattern", "drift_visible_to_child")),
    Rule("G8", "contract", "a counter column is gone, or its counted table has no trigger whose name matches "
         "`G8.trigger_pattern` (default `count|counter|rating|stat|sync`)",
         "the API reads the counters; without a trigger they drift from what they count",
         "keep the column; add a sync trigger on the counted table", ("trigger_pattern",)),
    Rule("G9", "contract", "a table matching `^backup_` is in the schema (reported under group `backup`)",
         "ad-hoc copies hold stale tenant data outside every policy",
         "archive with `pg_dump -Fc`, record checksum and audit row, drop", ("table_pattern", "group")),
    Rule("T-MISSING", "contract", "a contract table exists neither under its name nor its legacy name",
         "the application's queries on it fail", "create/migrate it"),
    Rule("T-RENAME", "contract", "the table (or a renamed column) still has its legacy name, or the legacy one exists "
         "next to the new one", "the new code reads the new name", "`ALTER TABLE … RENAME`"),
    Rule("T-COLUMN", "contract", "a column the contract expects is missing (`scope`, "
         "`marketplace_components.metadata`, kept columns)", "the application's queries on it fail", "add it"),
    Rule("T-TYPE", "contract", "a column has another type than the contract's (e.g. `tags` text, expected `text[]`)",
         "the models and the workload assume the contract's type", "convert it"),
    Rule("T-NULL", "contract", "nullability differs from the contract (`workflows.workspace_id` NOT NULL, …)",
         "the models assume the contract's nullability", "re-home NULLs, then `SET NOT NULL`"),
    Rule("T-DROP", "contract", "a column the restructure drops is still there",
         "two copies of one fact drift apart", "move its data where `moved_to` says, then drop it"),
    Rule("T-FK", "contract", "an FK states an action other than the contract's, points at another table, or is missing",
         "deletes cascade (or not) other than the contract says", "recreate it with the contract's action"),
    Rule("T-CHECK", "contract", "no CHECK constraint mentions all the listed columns (`scope`/`tenant_id`)",
         "rows the model forbids can be written", "add the CHECK"),
    Rule("T-INDEX", "contract", "no valid B-tree index has the key the contract states (`indexes`)",
         "the reads it was chosen for AND two bitmaps and sort instead (docs/benchmarks.md, G6 gate)",
         "`CREATE INDEX CONCURRENTLY … (key) INCLUDE (…)`, then drop the narrower index it replaces"),
    # rls: synap_verify/rls/lints.py, static, read from the catalog
    Rule("RLS001", "rls", "tenant table without RLS", "every tenant sees every row",
         "`ALTER TABLE t ENABLE ROW LEVEL SECURITY` + policies"),
    Rule("RLS002", "rls", "RLS enabled, not forced", "the owner (and members of the owning role) bypass it",
         "`ALTER TABLE t FORCE ROW LEVEL SECURITY`"),
    Rule("RLS003", "rls", "RLS enabled, no policy", "fails closed: the application can neither read nor write",
         "add policies"),
    Rule("RLS004", "rls", "a command (SELECT, INSERT, UPDATE, DELETE) has no permissive policy for the application "
         "that grants it (an ALL policy grants all four; an INSERT policy needs a WITH CHECK)",
         "that command sees / admits nothing", "add the policy"),
    Rule("RLS005", "rls", "ALL or INSERT policy without WITH CHECK",
         "an ALL policy then checks new rows with its USING, which G5 does not accept as an explicit write rule; an "
         "INSERT policy without it admits no row (an UPDATE policy without it checks new rows with USING: allowed)",
         "`WITH CHECK (tenant_id = current_tenant_id())`"),
    Rule("RLS006", "rls", "permissive policy that is always true (`true`, `1 = 1`, `x = x`), or does not compare the "
         "tenant column with the tenant context", "OR-ed with the others, it opens the table",
         "compare `tenant_id` with a configured setting or helper; configure the names if the policy uses others"),
    Rule("RLS007", "rls", "two or more permissive policies for the application overlap on one command",
         "they are OR-ed: the widest one decides",
         "one policy per command, or restrictive policies for extra conditions"),
    Rule("RLS008", "rls", "`current_setting('x')` without `missing_ok` (in a policy or in a tenant-context helper)",
         "no context raises an error instead of returning no row", "`current_setting('x', true)`, `NULLIF(..., '')`"),
    Rule("RLS009", "rls", "nullable tenant column (global tables excepted)",
         "a row without a tenant belongs to no one, or to everyone under a lax policy", "backfill, `SET NOT NULL`"),
    Rule("RLS010", "rls", "view over tenant tables without `security_invoker`, selectable by the application",
         "it runs with its owner's rights: the underlying RLS does not apply",
         "`ALTER VIEW v SET (security_invoker = true)` (PostgreSQL 15+), or revoke it from the application"),
    Rule("RLS011", "rls", "SECURITY DEFINER function the application can execute (trigger functions and tenant "
         "helpers excepted)", "it runs as its owner, outside the caller's RLS",
         "`SECURITY INVOKER`, or `REVOKE EXECUTE` from the application"),
    Rule("RLS012", "rls", "application role is superuser, BYPASSRLS, or owns (directly or through membership) a "
         "tenant table", "every policy is ignored (owner: unless forced)",
         "`NOSUPERUSER NOBYPASSRLS`; tables owned by a migration role"),
    Rule("RLS013", "rls", "application role missing, or without USAGE on the schema",
         "nothing shows the application runs as a role subject to RLS; the probes then use `synap_probe`",
         "create it and grant it"),
    # probe: synap_verify/rls/probes.py, live, as the application role (the table below them says how each runs)
    Rule("PROBE-SELECT", "probe", "tenant *a* counts another tenant's rows, or fewer than its own",
         "a leak, or a policy that hides the tenant's own data", "fix the SELECT policy (see the lints)"),
    Rule("PROBE-UPDATE", "probe", "*a* updates one of *b*'s rows, or cannot update its own",
         "a cross-tenant write, or a broken UPDATE policy", "USING on the tenant in the UPDATE (or ALL) policy"),
    Rule("PROBE-DELETE", "probe", "*a* deletes one of *b*'s rows, or cannot delete its own",
         "a cross-tenant delete, or a broken DELETE policy", "USING on the tenant in the DELETE (or ALL) policy"),
    Rule("PROBE-INSERT", "probe", "*a* inserts a row for *b*, or cannot insert its own",
         "a tenant can plant rows in another's data", "WITH CHECK on the tenant in the INSERT (or ALL) policy"),
    Rule("PROBE-MOVE", "probe", "*a* moves one of its rows to *b*", "a tenant can hand rows to another",
         "WITH CHECK on the tenant in the UPDATE (or ALL) policy"),
    Rule("PROBE-NOCTX", "probe", "rows are visible with no tenant context, `''` or a malformed one",
         "a connection that forgot the context sees data", "policies that fail closed on a missing context"),
    Rule("PROBE-LOCAL", "probe", "the tenant context survives its transaction",
         "a pooled connection carries the last tenant into the next request",
         "set the context with `set_config(..., true)` / `SET LOCAL`"),
    Rule("PROBE-DRIFT", "probe", "a child row whose tenant differs from its parent's is visible (to the parent's "
         "tenant, or to the child's unless `G7.drift_visible_to_child`)", "drifted rows leak across tenants",
         "tie the child to the parent's tenant (G7) and quarantine drifted rows"),
    Rule("PROBE-VIEW", "probe", "a view shows another tenant's rows, or rows with no context",
         "the view bypasses the tables' RLS", "`security_invoker = true`, or revoke the view"),
    Rule("PROBE-FUNC", "probe", "a zero-argument SECURITY DEFINER function returns another tenant's rows",
         "the function bypasses the caller's RLS", "`SECURITY INVOKER`, or revoke EXECUTE"),
    # equivalence: synap_verify/integrity/equivalence.py and moves.py
    Rule("EQ-TABLE", "equivalence", "a legacy table has no counterpart after the migration (nor an archive)",
         "all its rows are lost", "migrate or archive the table"),
    Rule("EQ-COLUMN", "equivalence", "a legacy column has no counterpart and the contract does not drop it (or the "
         "downgrade did not restore it)", "its values are lost", "keep, rename or move the column"),
    Rule("EQ-ERROR", "equivalence", "the comparison query of a table failed", "the table went unverified",
         "fix what the error names (a missing column, a type the comparison cannot cast)"),
    Rule("EQ-ROWS", "equivalence", "legacy rows are missing, or rows appeared that no journal explains",
         "data was lost (or invented) by the migration", "quarantine rejected values, never delete the row"),
    Rule("EQ-VALUE", "equivalence", "values changed (json by meaning; timestamps as UTC instants, with the shift) with "
         "no quarantine or journal entry", "data was altered by the migration",
         "convert with explicit rules (`AT TIME ZONE 'UTC'`, `::jsonb`), record what cannot be"),
    Rule("EQ-MOVED", "equivalence", "values of a dropped column are not where `moved_to` says (nor quarantined), or no "
         "check knows how to read their destination", "data was lost in a move, or went unverified",
         "carry every value; add a reader to `moves.py` for a new destination"),
    Rule("G8-COUNT", "equivalence", "(after migration) a counter differs from its `aggregate` over its `source` rows",
         "the API shows counts that its rows contradict", "recount from the rows; fix the trigger or the backfill "
         "that left it (synap_verify/integrity/counters.py)"),
    Rule("G8-COUNT-UNCHECKED", "equivalence", "a counter's rows cannot be found: no source table, or no single-column "
         "FK (or `via:` column) from it", "the counter went unverified", "state `via:` (the source column) in the "
         "contract"),
    # preflight: synap_verify/integrity/preflight.py, on the legacy database
    Rule("PF-JSONB", "preflight", "json text the server's own `::jsonb` rejects",
         "the conversion fails or must quarantine these rows", "plan the quarantine before the window"),
    Rule("PF-DUPKEYS", "preflight", "json objects with duplicate keys", "jsonb keeps only the last value",
         "decide which value wins before converting"),
    Rule("PF-NULL", "preflight", "NULL in a column that becomes NOT NULL", "the SET NOT NULL fails",
         "re-home or reject the rows"),
    Rule("PF-TENANT", "preflight", "NULL tenant on a required tenant table", "the row belongs to no tenant",
         "derive it from the parent, or keep the column nullable"),
    Rule("PF-DRIFT", "preflight", "child tenant ≠ parent tenant (G7)", "the composite FK of G7 cannot be created",
         "quarantine or re-home the drifted rows"),
    Rule("PF-PERMISSION", "preflight", "permission keys without a permission row",
         "they cannot be carried into `rbac_role_permissions`", "add the permissions or accept the loss"),
    Rule("PF-COUNTER", "preflight", "counters out of sync with what they count (G8)",
         "the sync triggers keep a wrong value wrong", "recount during the migration"),
    # bench: synap_verify/bench/gate.py and workload.py
    Rule("BENCH-BUFFERS", "bench", "shared blocks hit+read of execution (EXPLAIN ANALYZE BUFFERS, warm, summed over "
         "the parameter sets) more than 1.05x the legacy side and more than 2 blocks per execution beyond it, unless "
         "the per-round ratio's 95% CI lies entirely below 1; a first run whose median is below 1 and whose interval "
         "reaches 1 is rerun once and the rerun decides",
         "block counts are the deterministic measure of a plan's cost (see the 2 blocks below)",
         "restore the index or plan the legacy side had; or accept the cost in the workload, with why"),
    Rule("BENCH-PLAN", "bench", "the legacy plan used an index and the migrated plan only sequential scans reading no "
         "fewer blocks; or a `gin:` column has no GIN index", "a lost index", "create the index (G6)"),
    Rule("BENCH-TIME", "bench", "one-sided Wilcoxon signed-rank test of the per-round log ratios p < 0.01 **and** the "
         "95% order-statistic CI of their median reaches above 1.05 **and** that upper bound is more than the floor "
         "in time (below), in the first run **and** in a confirmation rerun", "the query is slower than G6 allows",
         "find the plan change (`--bench-explain`); or accept the cost in the workload, with why"),
    Rule("BENCH-ROWS", "bench", "the two versions return different rows (`\\u0000` rows hidden on both sides)",
         "the migrated query answers differently", "fix the migrated query or the data it reads"),
    Rule("BENCH-ERROR", "bench", "the query could not run", "the query went unmeasured",
         "fix the workload query for the migrated schema"),
    # load: synap_verify/loadtest/verdict.py and command.py
    Rule("LOAD-P95", "load", "baseline: p95 latency above `p95_ms`", "the API is slower than its baseline allows",
         "find the slow endpoint in the report; raise the threshold only with a reason"),
    Rule("LOAD-P99", "load", "baseline: p99 latency above `p99_ms`", "the API is slower than its baseline allows",
         "as LOAD-P95"),
    Rule("LOAD-FAILURES", "load", "baseline: no request ran, or the failure ratio is above `max_failure_ratio`",
         "the API fails under load", "read the failures in the report"),
    Rule("LOAD-THROUGHPUT", "load", "baseline: fewer requests per second than `min_rps`",
         "the API serves less than its baseline", "as LOAD-P95"),
    Rule("LOAD-FAILED-REQUESTS", "load", "more requests failed during the migration than `max_failures` (0)",
         "the migration is not zero-downtime", "make the failing step online (expand/contract, CONCURRENTLY)"),
    Rule("LOAD-NO-TRAFFIC", "load", "no request ran during the migration", "nothing was measured",
         "lengthen `--before`, or check the API and Locust logs"),
    Rule("LOAD-P99-DURING", "load", "p99 during the migration above `p99_factor` × p99 before and above "
         "`p99_floor_ms`", "users wait while the migration runs", "find the step in the blocking table"),
    Rule("LOAD-STEP-FAILED", "load", "a migration step failed under load", "the migration does not survive traffic",
         "fix the revision (its error is in the finding)"),
    Rule("LOAD-STEP-BLOCKING", "load", "a step kept a load query waiting on a lock longer than `max_blocking_s` (1 s)",
         "the step takes a lock the application waits on", "`lock_timeout` + retries, `CONCURRENTLY`, batches"),
    Rule("LOAD-RATE", "load", "`--rate R` missed by more than 5% after the ramp-up (too low or too high)",
         "a rate that was not held measured something else than asked",
         "more `--users` (each user paces itself), or a target below what the system serves"),
    # plan: synap_verify/plan/build.py
    Rule("PLAN-MANUAL", "plan", "the contract does not decide a change the database needs: a column to drop whose "
         "data must move first, a column with no source of data, a NOT NULL or type change that needs values, a "
         "counter's aggregate, a SET NULL target on a NOT NULL column, conflicting FKs or an FK no G4 default "
         "covers, an FK the ops engine cannot redeclare, a tenant column that is not uuid, a materialized view over "
         "tenant tables, a contract over several schemas",
         "a planner that guessed would restructure the data in a way nobody reviewed",
         "state it in the contract (e.g. `foreign_keys`, `rules.G4.defaults`) and plan again; a data move: write it "
         "in a moves file the contract names (`moves:`, docs/plan.md) and plan again"),
    Rule("LOAD-SAMPLER", "load", "the lock-wait sampler failed", "blocking went unmeasured",
         "fix what the error names (the sampler needs `pg_stat_activity` and `pg_locks`)"),
)
RULES: dict[str, Rule] = {r.id: r for r in _RULES}


class UnknownRule(ValueError):
    """A finding under an id that is not registered here."""


def rule(rule_id: str) -> Rule:
    """The registered rule, or :class:`UnknownRule` naming where to register it."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise UnknownRule(f"rule id {rule_id!r} is not registered: add a Rule to synap_verify/rules.py") from None


def family(name: str) -> tuple[Rule, ...]:
    return tuple(r for r in _RULES if r.family == name)

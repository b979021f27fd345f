"""The planner: the restructure computed from (contract, live catalog) as reviewable revision files."""

from synap_verify.plan.build import GroupPlan, Plan, build_plan

__all__ = ["GroupPlan", "Plan", "build_plan"]

"""Nothing lost: data equivalence before vs after the restructure, JSON by meaning, preflight, rollback."""

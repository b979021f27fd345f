"""The restructure contract: what the target schema must look like, checked against any database."""

from synap_verify.contract.check import check
from synap_verify.contract.load import load_contract
from synap_verify.contract.model import Contract, Mapping, TableSpec

__all__ = ["Contract", "Mapping", "TableSpec", "check", "load_contract"]

"""synap-verify: verification and benchmark harness for the synapscale_db restructure."""

from synap_verify.errors import SynapError
from synap_verify.findings import Finding

__all__ = ["Finding", "SynapError"]
__version__ = "0.1.0"

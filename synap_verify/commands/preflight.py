"""``synap-verify preflight`` (see :mod:`synap_verify.integrity.command`)."""

from synap_verify.integrity.command import Preflight

add_arguments, run = Preflight.add_arguments, Preflight.run

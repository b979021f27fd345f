"""``synap-verify equivalence`` (see :mod:`synap_verify.integrity.command`)."""

from synap_verify.integrity.command import Equivalence

add_arguments, run = Equivalence.add_arguments, Equivalence.run

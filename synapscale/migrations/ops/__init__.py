"""Shared mechanics of the restructure revisions; the revisions themselves only hold explicit lists.

Every helper issues set-based SQL (never a Python loop over rows, except the keyset batches of the
expand/contract backfill). All names are schema-qualified, so nothing depends on ``search_path``, and
every revision runs with ``TimeZone = 'UTC'`` so nothing depends on the session time zone either.
See docs/decisions.md for the why of each rule.
"""

from synapscale.migrations.ops.archive import *  # noqa: F403
from synapscale.migrations.ops.compat import *  # noqa: F403
from synapscale.migrations.ops.counters import *  # noqa: F403
from synapscale.migrations.ops.declarations import *  # noqa: F403
from synapscale.migrations.ops.fks import *  # noqa: F403
from synapscale.migrations.ops.gin import *  # noqa: F403
from synapscale.migrations.ops.groups import *  # noqa: F403
from synapscale.migrations.ops.guards import *  # noqa: F403
from synapscale.migrations.ops.jsonb import *  # noqa: F403
from synapscale.migrations.ops.moves import *  # noqa: F403
from synapscale.migrations.ops.plumbing import *  # noqa: F403
from synapscale.migrations.ops.rls import *  # noqa: F403
from synapscale.migrations.ops.views import *  # noqa: F403

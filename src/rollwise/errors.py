"""rollwise's one exception tree.

Every error rollwise raises on purpose derives from :class:`RollwiseError`, so that callers can
catch one type, and the CLI can turn any of them into one line for a person (no traceback) with
the right exit code::

    RollwiseError                     base; ``exit_code`` 1 unless a subclass says otherwise
    ├── InputError                    bad input from a person; nothing changed; exit 2
    │   ├── SpecError                 a spec file: file:line, field path, what is allowed
    │   ├── UsageError                a command line or API argument
    │   └── ManifestError             rendered Kubernetes objects that fail their schema
    ├── NotFoundError                 an app, revision or replica that does not exist
    ├── ConflictError                 a command that the current phase does not allow
    │   ├── BudgetExhaustedError      a deploy the error-budget policy refuses
    │   ├── WindowClosedError         a deploy outside the release windows, or in a freeze
    │   └── ChecklistError            a deploy --require-checklist with an item failing
    ├── ControllerError               reaching or running the controller
    │   └── ControllerNotRunning      no controller answers on the admin socket
    ├── StoreError                    the state store (SQLite) cannot be read or written
    ├── BackendError                  starting, probing or stopping replicas
    │   └── ReplicaStartError         a replica's process could not start
    ├── DataPlaneError                the proxy process: start, admin channel, route push
    │   └── RouteVerifyError          the proxy did not apply the generation it was sent
    └── ClusterError                  the Kubernetes API: kubeconfig, reachability, refusals
        └── LeadershipLost            another controller holds the Lease now; exit 3

Messages say what went wrong, where (file:line, field path, app, revision) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BudgetExhaustedError",
    "ChecklistError",
    "ClusterError",
    "ConflictError",
    "ControllerError",
    "ControllerNotRunning",
    "DataPlaneError",
    "InputError",
    "LeadershipLost",
    "ManifestError",
    "NotFoundError",
    "ReplicaStartError",
    "RollwiseError",
    "RouteVerifyError",
    "SpecError",
    "StoreError",
    "UsageError",
    "WindowClosedError",
]


class RollwiseError(Exception):
    """Base of every error rollwise raises on purpose."""

    exit_code: int = 1

    @property
    def message(self) -> str:
        return str(self)


class InputError(RollwiseError):
    """Input from a person was wrong; nothing was changed."""

    exit_code = 2


class SpecError(InputError):
    """A spec file is invalid. ``problems`` holds one line per problem, each with file:line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UsageError(InputError):
    """A command-line or API argument is invalid."""


class ManifestError(InputError):
    """Kubernetes objects rendered from a spec fail their schema (each field path named)."""


class NotFoundError(RollwiseError):
    """An app, revision or replica that does not exist was named."""


class ConflictError(RollwiseError):
    """A command the current phase does not allow; the message names the phase."""


class BudgetExhaustedError(ConflictError):
    """A deploy refused because an SLO's error budget is spent (``errorBudgetPolicy``); the
    message has the numbers and the override."""


class WindowClosedError(ConflictError):
    """A deploy refused outside ``releaseWindows`` (or in a freeze); the message says when
    the next window opens and how to override."""


class ChecklistError(ConflictError):
    """A ``deploy --require-checklist`` refused: the message lists each failing item and
    its fix."""


class ControllerError(RollwiseError):
    """The controller could not be reached or could not do what was asked."""


class ControllerNotRunning(ControllerError):
    """No controller answers on the admin socket."""


class StoreError(RollwiseError):
    """The state store cannot be opened, read or written."""


class BackendError(RollwiseError):
    """Replicas could not be started, probed or stopped."""


class ReplicaStartError(BackendError):
    """A replica's process could not be started (bad argv, missing program, cwd)."""


class DataPlaneError(RollwiseError):
    """The proxy process failed to start or to answer on its admin channel."""


class RouteVerifyError(DataPlaneError):
    """The proxy did not acknowledge the routing generation it was sent."""


class ClusterError(RollwiseError):
    """The Kubernetes API could not be used: no usable kubeconfig, unreachable, or a request
    refused (the message names the object and the API's reason)."""


class LeadershipLost(ClusterError):
    """This controller could not renew its Lease in time, or another holds it now: it stops
    acting at once (exit 3) so that two controllers never act on one app."""

    exit_code = 3

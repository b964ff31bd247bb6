"""Errors a user can cause, each carrying one sentence a non-programmer can act on.

Pages catch `UserError` and show `str(err)` with st.error; anything else is a bug.
"""


class UserError(Exception):
    """An error caused by what the user gave us; its message is shown as it is."""


class DataError(UserError):
    """A dataset is missing, truncated or not what its name says."""


class ImageError(UserError):
    """An uploaded file is not an image we can use."""


class StoreError(UserError):
    """A model in the store cannot be read, written or imported."""


class RunError(UserError):
    """A training run cannot be started, stopped or resumed."""


class WorkerLost(RunError):
    """A worker of a multi-worker run stopped answering: the run is interrupted, not failed, and
    the same commands on every machine resume it."""


class ChiefAbsent(RunError):
    """The chief of a multi-worker run did not call this worker within the join timeout."""

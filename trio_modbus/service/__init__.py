"""The service step: execute decoded requests against a datastore context.

A *service* is the application's one extension point (see DESIGN.md): an async callable
``service(request, ctx) -> response | None``. :class:`DatastoreService` is the standard one.
"""

from ._datastore import DEFAULT_SERVER_ID as DEFAULT_SERVER_ID
from ._datastore import MAX_FIFO_COUNT as MAX_FIFO_COUNT
from ._datastore import DatastoreService as DatastoreService
from ._datastore import RequestContext as RequestContext
from ._datastore import Response as Response
from ._datastore import Service as Service

__all__ = [
    "DEFAULT_SERVER_ID",
    "MAX_FIFO_COUNT",
    "DatastoreService",
    "RequestContext",
    "Response",
    "Service",
]

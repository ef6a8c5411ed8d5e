"""The service step: execute decoded requests against a datastore context.

A *service* is the application's one extension point (see DESIGN.md): an async callable
``service(request, ctx) -> response | None``. :class:`DatastoreService` is the standard one: it
routes by unit id, runs the datastore operations of every public function code, keeps the
server's diagnostic counters and event log, answers device identification, and runs
user-defined functions. Cross-cutting behaviour is a *layer*, a service wrapping another
(:class:`ServiceLayer`; :class:`RecordingService` records every exchange).

Responses are PDU ``bytes`` (function code first) for normal replies and
:class:`~trio_modbus.pdu.pdu.ExceptionResponse` for exception replies; ``None`` means no reply
(listen-only mode, broadcast, ignored missing unit, or a custom function that chose silence).
"""

from trio_modbus._public import publish

from ._context import RequestContext as RequestContext
from ._context import Response as Response
from ._context import Service as Service
from ._data import MAX_FIFO_COUNT as MAX_FIFO_COUNT
from ._datastore import DatastoreService as DatastoreService
from ._diagnostics import DEFAULT_SERVER_ID as DEFAULT_SERVER_ID
from ._layers import Exchange as Exchange
from ._layers import RecordingService as RecordingService
from ._layers import ServiceLayer as ServiceLayer
from ._layers import innermost as innermost

__all__ = [
    "DEFAULT_SERVER_ID",
    "MAX_FIFO_COUNT",
    "DatastoreService",
    "Exchange",
    "RecordingService",
    "RequestContext",
    "Response",
    "Service",
    "ServiceLayer",
    "innermost",
]

publish(__name__, globals(), __all__)

"""The routes of the HTTP API, one router per concern, each built for one service.

Each module's ``router(service)`` returns a new Powertools router whose handlers close over
``service``. A closure, not ``app.append_context``: the resolver clears its context after every
event, and a module-level router would be shared by every app built in the process.
"""

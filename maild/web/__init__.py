"""The daemon's HTTP server (aiohttp): the web form, API intake, requester pages and more.

``ticketd run`` starts it on its own thread and event loop when ``http.enabled`` is true
(:mod:`maild.web.server`). Handlers only validate, write to the spool or read the store through
:meth:`WebContext.db <maild.web.context.WebContext.db>` (a thread pool, never on the loop), and
answer; the worker does the rest, exactly as for mail.

Adding routes from another package
----------------------------------
1. Write a module with a function ``routes(ctx: WebContext) -> list[web.AbstractRouteDef]``
   (``web.get(...)``, ``web.post(...)``; close over ``ctx`` for the App, the page renderer and
   the database helper).
2. Add the module's dotted name to :data:`maild.web.server.ROUTE_MODULES` (one line).
3. Pages extend ``base.html.j2`` (``{% extends "base.html.j2" %}``, blocks ``title`` and
   ``content``) from a template in ``maild/web/templates/`` or ``templates/web/`` (the admin's
   copy wins), rendered with ``ctx.pages.render(request, "name.html.j2", **values)``.
4. Every answer gets the security headers of :mod:`maild.web.middleware`; a handler that needs a
   different Content-Security-Policy (e.g. a script file from ``/static/``) sets its own header.
   Raise ``web.HTTPException`` subclasses for errors: the middleware turns them into a plain page,
   or JSON ``{"error": ...}`` for ``/api/`` paths and ``Accept: application/json``.
"""

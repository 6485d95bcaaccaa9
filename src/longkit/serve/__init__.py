"""The OpenAI-compatible server: the top of the house (it uses backends and rag; nothing imports it).

Start at app.py: `create_app` assembles the middleware (middleware.py), the routers (routes/) and the completion
service (service.py) that the completions and chat APIs (completions.py, chat.py) share."""

from __future__ import annotations

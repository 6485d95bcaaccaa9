"""The HTTP endpoints, one router per module: health (/health, /metrics), models (/v1/models), completions
(/v1/completions) and chat (/v1/chat/completions). A new endpoint is a new module here, listed in ROUTERS."""

from __future__ import annotations

from fastapi import APIRouter

from longkit.serve.routes import chat, completions, health, models

ROUTERS: tuple[APIRouter, ...] = (health.router, models.router, completions.router, chat.router)

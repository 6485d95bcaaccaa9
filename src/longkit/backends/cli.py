"""`longkit serve`: an OpenAI-compatible HTTP server over a local backend."""

from __future__ import annotations

import os

import typer

from longkit.cli_common import friendly_errors


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the root app."""

    @app.command("serve")
    @friendly_errors
    def serve(
        model: str = typer.Option("smollm2-135m-instruct", "--model", "-m", help="Model name, GGUF file or directory."),
        host: str = typer.Option("127.0.0.1", help="Address to bind."),
        port: int = typer.Option(8000, help="Port to bind."),
        api_key: str | None = typer.Option(None, "--api-key", help="Require this bearer token "
                                           "(default: $LONGKIT_API_KEY if set)."),
        max_tokens_limit: int = typer.Option(1024, help="Largest max_tokens a request may ask for."),
        max_request_bytes: int = typer.Option(8 * 1024 * 1024, help="Largest request body accepted."),
        max_context: int | None = typer.Option(None, help="Override the model's context window."),
        index: str | None = typer.Option(None, "--index", help="RAG: retrieve from this index (longkit rag index) "
                                         "before answering chat requests; responses carry 'citations'."),
        rag_k: int | None = typer.Option(None, "--rag-k", help="RAG: chunks per answer (default: tuned, else 5)."),
    ) -> None:
        """Serve a model over /v1/models, /v1/completions and /v1/chat/completions."""
        import uvicorn

        from longkit.backends import make_backend
        from longkit.backends.server import create_app

        backend = make_backend("hf", model, max_context=max_context)
        key = api_key if api_key is not None else os.environ.get("LONGKIT_API_KEY")
        rag = None
        if index is not None:
            from longkit.rag.pipeline import RagPipeline

            rag = RagPipeline.from_index(index, backend, top_k=rag_k)
        application = create_app(backend, model_id=model, api_key=key, max_tokens_limit=max_tokens_limit,
                                 max_request_bytes=max_request_bytes, rag=rag)
        uvicorn.run(application, host=host, port=port, log_level="info")

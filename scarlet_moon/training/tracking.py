"""Experiment tracking adapters: MLflow (default, local sqlite store), Weights & Biases, none.

mlflow and wandb are imported lazily, only when a run starts, so the CLI stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.exporters.atomic import process_alive

log = logging.getLogger(__name__)
DEFAULT_EXPERIMENT = "scarlet-moon"
DEFAULT_MODEL_NAME = "scarlet-moon-sprites"
PROBE_TIMEOUT_S = 5.0  # an MLflow server that does not answer within it is reported, not retried
FLUSH_EVERY_S = 5.0  # logged points reach the store at least this often (a live loss curve)


class Tracker(Protocol):
    def start(self, name: str, params: Mapping[str, Any], resume_id: str | None = None) -> str | None: ...
    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...
    def register(self, path: Path, name: str) -> None: ...
    def finish(self, status: str = "FINISHED") -> None: ...


@dataclass(frozen=True)
class TrackingOptions:
    """Where a run is tracked: MLflow (a local sqlite store beside the runs by default) or none, and
    Weights & Biases on request; the model is registered under `register_name` when MLflow is on."""

    kind: str = "mlflow"  # "mlflow" | "none"
    uri: str | None = None  # None: MLFLOW_TRACKING_URI, else sqlite:///<runs>/mlflow.db
    experiment: str = DEFAULT_EXPERIMENT
    register_name: str | None = None  # None: DEFAULT_MODEL_NAME when any tracker runs
    wandb: bool = False
    wandb_mode: str | None = None  # None: online with WANDB_API_KEY, else offline
    wandb_project: str = "scarlet-moon"

    def __post_init__(self) -> None:
        if self.kind not in ("mlflow", "none"):
            raise BadInput(f"{arg('tracking')} {self.kind!r}: expected mlflow or none")
        if self.wandb_mode not in (None, "offline", "online", "disabled"):
            raise BadInput(f"unknown {arg('wandb_mode')} {self.wandb_mode!r}; allowed: offline, online, disabled")
        if self.wandb and self.kind == "none":
            raise BadInput(
                f"{arg('wandb')} with {arg('tracking')} none: no tracking was asked and W&B was; drop one of them"
            )

    def trackers(self, runs_root: Path) -> dict[str, "Tracker"]:
        """The trackers these options ask for, their stores checked (nothing starts until a run does)."""
        out: dict[str, Tracker] = {}
        if self.kind == "mlflow":
            uri = self.uri or default_mlflow_uri(runs_root)
            if uri.startswith("sqlite:") and not self.uri:  # the default store beside the runs: make its folder
                runs_root.mkdir(parents=True, exist_ok=True)
            check_mlflow_uri(uri)
            out["mlflow"] = MlflowTracker(uri, self.experiment, artifact_root=runs_root / "mlartifacts")
        if self.wandb and self.kind != "none":
            out["wandb"] = WandbTracker(self.wandb_project, self.wandb_mode, runs_root)
        return out

    def model_name(self, trackers: Mapping[str, "Tracker"]) -> str | None:
        return self.register_name or (DEFAULT_MODEL_NAME if trackers else None)


MLFLOW_SCHEMES = (
    "",
    "file",
    "http",
    "https",
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
)


def check_mlflow_uri(uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """BadInput within seconds for a store that cannot work: a server that does not answer (MLflow itself
    would retry for minutes), a sqlite file in a folder that does not exist or cannot be written."""
    from urllib.error import HTTPError, URLError
    from urllib.parse import urlparse
    from urllib.request import urlopen

    try:
        parsed = urlparse(uri)
        parsed.port  # noqa: B018 - a malformed host or port raises here, not deep inside MLflow
    except ValueError as exc:
        raise BadInput(f"{arg('tracking_uri')} {uri!r} is not a valid URI ({exc})") from None
    if parsed.scheme not in MLFLOW_SCHEMES:
        raise BadInput(
            f"{arg('tracking_uri')} {uri!r}: scheme {parsed.scheme!r} is not one MLflow stores to "
            f"here; use sqlite:///PATH/mlflow.db (the default), http(s)://HOST, or a database URI "
            f"({', '.join(s for s in MLFLOW_SCHEMES if s)})"
        )
    if parsed.scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise BadInput(
            f"{arg('tracking_uri')} {uri!r}: MLflow 3 keeps the file store in maintenance mode and "
            "refuses it; use sqlite:///PATH/mlflow.db (or set MLFLOW_ALLOW_FILE_STORE=true)"
        )
    if parsed.scheme in ("http", "https"):
        probe = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
        try:
            with urlopen(probe, timeout=timeout) as reply:  # noqa: S310 - the user's own URI
                json.loads(reply.read(1 << 20) or b"{}")  # an MLflow server answers JSON
        except HTTPError as exc:
            if exc.code not in (401, 403):  # 401/403: a server that wants the credentials MLflow will send
                raise BadInput(
                    f"{arg('tracking_uri')} {uri!r}: no MLflow server answers there (HTTP {exc.code} for {probe})"
                ) from None
        except (URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BadInput(f"{arg('tracking_uri')} {uri!r}: no MLflow server answers there ({reason})") from None
    elif parsed.scheme == "sqlite":
        folder = Path(parsed.path[1:] if parsed.path.startswith("//") else parsed.path).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise BadInput(
                f"{arg('tracking_uri')} {uri!r}: the folder {str(folder)!r} does not exist or cannot be written"
            )


def default_mlflow_uri(runs_root: Path) -> str:
    """MLFLOW_TRACKING_URI when set, else a sqlite store beside the run folders."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{runs_root.resolve() / 'mlflow.db'}"


class MlflowTracker:
    """A run in an MLflow store. Points reach the store every FLUSH_EVERY_S seconds (or 200 points),
    so the loss curve is live; a run of this machine whose process died is marked KILLED when the
    next run starts (its pid and host are tags of the run)."""

    def __init__(self, uri: str, experiment: str = DEFAULT_EXPERIMENT, artifact_root: Path | None = None):
        self.uri, self.experiment, self.artifact_root = uri, experiment, artifact_root
        self.run_id: str | None = None
        self._pending: list[Any] = []
        self._flushed = time.monotonic()

    def start(self, name: str, params: Mapping[str, Any], resume_id: str | None = None) -> str:
        from mlflow.tracking import MlflowClient

        for noisy in ("alembic", "mlflow"):  # table creation and run links are INFO chatter
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri=self.uri)
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is None:
            location = (self.artifact_root.resolve().as_uri()) if self.artifact_root else None
            exp_id = self.client.create_experiment(self.experiment, artifact_location=location)
        else:
            exp_id = exp.experiment_id
        self._close_dead_runs(exp_id, keep=resume_id)
        if resume_id:
            self.client.update_run(resume_id, status="RUNNING")
            self.run_id = resume_id
        else:
            run = self.client.create_run(exp_id, run_name=name)
            self.run_id = run.info.run_id
            self.log_params(params)
        self.client.set_tag(self.run_id, "sm.pid", str(os.getpid()))
        self.client.set_tag(self.run_id, "sm.host", socket.gethostname())
        return self.run_id

    def _close_dead_runs(self, exp_id: str, keep: str | None) -> None:
        """RUNNING runs started on this machine by a process that is gone -> KILLED (they never ended)."""
        for run in self.client.search_runs([exp_id], "attributes.status = 'RUNNING'", max_results=1000):
            tags = run.data.tags
            if (
                run.info.run_id != keep
                and tags.get("sm.host") == socket.gethostname()
                and tags.get("sm.pid", "").isdigit()
                and not process_alive(int(tags["sm.pid"]))
            ):
                self.client.set_terminated(run.info.run_id, status="KILLED")
                log.warning(
                    "MLflow run %s (%s) had stopped without a word: marked KILLED", run.info.run_name, run.info.run_id
                )

    @property
    def _run(self) -> str:
        """The run's id; a call before start() is a programming error."""
        if self.run_id is None:
            raise RuntimeError("the MLflow run has not been started")
        return self.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self._run, params=[Param(k, str(v)[:500]) for k, v in params.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), ts, step) for k, v in metrics.items()]
        if len(self._pending) >= 200 or time.monotonic() - self._flushed >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self._pending and self.run_id:
            for i in range(0, len(self._pending), 1000):
                self.client.log_batch(self.run_id, metrics=self._pending[i : i + 1000])
            self._pending = []
        self._flushed = time.monotonic()

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.flush()
        self.client.log_artifact(self._run, str(path), artifact_path)

    def register(self, path: Path, name: str) -> None:
        """Register the logged model file under `name` (a new version each call)."""
        from mlflow.exceptions import MlflowException

        run = self.client.get_run(self._run)
        source = f"{run.info.artifact_uri}/model/{path.name}"
        try:
            self.client.create_registered_model(name)
        except MlflowException:
            pass  # already exists
        version = self.client.create_model_version(name, source=source, run_id=self._run)
        log.info("registered %s version %s in the MLflow model registry", name, version.version)

    def finish(self, status: str = "FINISHED") -> None:
        if self.run_id:
            self.flush()
            self.client.set_terminated(self.run_id, status=status)


class WandbTracker:
    def __init__(self, project: str, mode: str | None, directory: Path):
        if mode not in (None, "offline", "online", "disabled"):
            raise BadInput(f"unknown {arg('wandb_mode')} {mode!r}; allowed: offline, online, disabled")
        # never let wandb wait at its interactive login menu: offline unless a key is set
        self.mode: Any = mode or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.project, self.dir = project, directory
        self.run: Any = None  # a wandb Run once started

    def start(self, name: str, params: Mapping[str, Any], resume_id: str | None = None) -> str | None:
        import wandb

        settings = wandb.Settings(init_timeout=30, silent=True)
        kwargs: dict[str, Any] = dict(
            project=self.project, name=name, config=dict(params), dir=str(self.dir), settings=settings
        )
        if resume_id:
            kwargs.update(id=resume_id, resume="allow")
        try:
            self.run = wandb.init(mode=self.mode, **kwargs)
        except (wandb.errors.UsageError, wandb.errors.CommError) as exc:
            log.warning("wandb %s failed (%s); logging offline instead", self.mode, exc)
            self.mode = "offline"
            self.run = wandb.init(mode="offline", **kwargs)
        return getattr(self.run, "id", None)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.run.config.update(dict(params), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        import wandb

        if path.suffix == ".png":
            self.run.log({f"{artifact_path or 'files'}/{path.stem}": wandb.Image(str(path))})
        else:
            self.run.save(str(path), base_path=str(path.parent), policy="now")

    def register(self, path: Path, name: str) -> None:
        import wandb

        art = wandb.Artifact(name, type="model")
        art.add_file(str(path))
        self.run.log_artifact(art)

    def finish(self, status: str = "FINISHED") -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "FINISHED" else 1)


class MultiTracker:
    """Fans every call out to several trackers; ids are keyed by tracker kind."""

    def __init__(self, trackers: Mapping[str, Tracker]):
        self.trackers = dict(trackers)
        self.ids: dict[str, str | None] = {}

    def start(self, name: str, params: Mapping[str, Any], resume_ids: Mapping[str, str] | None = None) -> dict:
        for kind, t in self.trackers.items():
            self.ids[kind] = t.start(name, params, (resume_ids or {}).get(kind))
        return self.ids

    def log_params(self, params: Mapping[str, Any]) -> None:
        for t in self.trackers.values():
            t.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for t in self.trackers.values():
            t.log_metrics(metrics, step)

    def flush(self) -> None:
        """Make every point logged so far durable (called before each checkpoint is written)."""
        for t in self.trackers.values():
            if hasattr(t, "flush"):
                t.flush()

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        for t in self.trackers.values():
            t.log_artifact(path, artifact_path)

    def register(self, path: Path, name: str) -> None:
        for t in self.trackers.values():
            t.register(path, name)

    def finish(self, status: str = "FINISHED") -> None:
        for t in self.trackers.values():
            t.finish(status)

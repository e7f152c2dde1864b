"""Sample KFP v2 pipeline: train a tiny model, log it and register a version in MLflow, then hand the version to
modelgate, which evaluates it against the policy and asks for approval.

The training step is deliberately dependency-free (a least-squares line fitted on synthetic data, standard
library only) and talks to MLflow's REST API directly, so the sample runs anywhere, including kfp's local
runner. A real pipeline would train with its own stack and register through ``mlflow``.

On a cluster, compile it (``python kfp/pipelines/train_register_promote.py out.yaml``) and mount the modelgate
token from a secret; ``kfp-kubernetes`` does that when installed (see ``with_token_secret``).
"""

import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl

# This folder is not a package (a `kfp/__init__.py` would shadow the kfp SDK), so the component is imported by path.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "components"))
from trigger_promotion import trigger_promotion  # noqa: E402

BASE_IMAGE = "python:3.11-slim"


@dsl.component(base_image=BASE_IMAGE)
def train_and_register(
    mlflow_uri: str,
    model_name: str,
    samples: int = 200,
    seed: int = 7,
    mlflow_token_env: str = "MLFLOW_TRACKING_TOKEN",
) -> NamedTuple("Registered", [("version", int), ("run_id", str), ("accuracy", float)]):
    """Fit y = a·x + b on noisy synthetic data, log params/metrics to MLflow, register the run as a version."""
    import json
    import os
    import random
    import time
    import urllib.error
    import urllib.request
    from collections import namedtuple

    base = mlflow_uri.rstrip("/") + "/api/2.0/mlflow/"
    token = os.environ.get(mlflow_token_env, "").strip()

    def call(method: str, path: str, payload: dict | None = None) -> dict:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return json.loads(res.read().decode() or "{}")
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            raise RuntimeError(f"MLflow {method} {path}: {err.code} {body[:300]}") from None

    # Train: ordinary least squares on y = 3x + 1 + noise; "accuracy" = share of points within 0.5 of the fit.
    rng = random.Random(seed)
    xs = [rng.uniform(0, 10) for _ in range(samples)]
    ys = [3 * x + 1 + rng.gauss(0, 0.25) for x in xs]
    mx, my = sum(xs) / samples, sum(ys) / samples
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    b = my - a * mx
    accuracy = sum(1 for x, y in zip(xs, ys) if abs(a * x + b - y) < 0.5) / samples
    rmse = (sum((a * x + b - y) ** 2 for x, y in zip(xs, ys)) / samples) ** 0.5

    experiment = f"kfp-{model_name}"
    try:
        exp_id = call("GET", "experiments/get-by-name?experiment_name=" + urllib.request.quote(experiment))["experiment"]["experiment_id"]
    except RuntimeError:
        exp_id = call("POST", "experiments/create", {"name": experiment})["experiment_id"]
    now = int(time.time() * 1000)
    run = call("POST", "runs/create", {"experiment_id": exp_id, "start_time": now, "run_name": f"train-{model_name}",
                                         "tags": [{"key": "mlflow.user", "value": "kubeflow"}]})["run"]
    run_id = run["info"]["run_id"]
    call("POST", "runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": "accuracy", "value": accuracy, "timestamp": now, "step": 0},
                    {"key": "rmse", "value": rmse, "timestamp": now, "step": 0}],
        "params": [{"key": "samples", "value": str(samples)}, {"key": "seed", "value": str(seed)},
                   {"key": "slope", "value": f"{a:.6f}"}, {"key": "intercept", "value": f"{b:.6f}"}],
        "tags": [{"key": "data.lookback_days", "value": "30"}, {"key": "training.source", "value": "synthetic"}],
    })
    call("POST", "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})
    try:
        call("POST", "registered-models/create", {"name": model_name})
    except RuntimeError as err:
        if "RESOURCE_ALREADY_EXISTS" not in str(err):
            raise
    version = call("POST", "model-versions/create", {"name": model_name, "source": f"runs:/{run_id}/model", "run_id": run_id})
    number = int(version["model_version"]["version"])
    print(f"registered {model_name} v{number} (accuracy={accuracy:.3f}, rmse={rmse:.3f})")
    out = namedtuple("Registered", ["version", "run_id", "accuracy"])
    return out(number, run_id, accuracy)


def with_token_secret(task: dsl.PipelineTask, secret_name: str = "modelgate-api", key: str = "token") -> dsl.PipelineTask:
    """Mount the modelgate token from a Kubernetes secret as MODELGATE_API_TOKEN (needs kfp-kubernetes)."""
    try:
        from kfp import kubernetes  # type: ignore[attr-defined]
    except ImportError:
        return task  # Local runs and clusters that inject the env another way.
    return kubernetes.use_secret_as_env(task, secret_name=secret_name, secret_key_to_env={key: "MODELGATE_API_TOKEN"})


@dsl.pipeline(name="train-register-promote", description="Train, register in MLflow, and ask modelgate to promote")
def train_register_promote(mlflow_uri: str, modelgate_url: str, model_name: str, samples: int = 200, on_behalf_of: str = "") -> str:
    registered = train_and_register(mlflow_uri=mlflow_uri, model_name=model_name, samples=samples)
    trigger = trigger_promotion(
        api_url=modelgate_url, model_name=model_name, model_version=registered.outputs["version"], on_behalf_of=on_behalf_of
    )
    with_token_secret(trigger)
    return trigger.output


if __name__ == "__main__":
    compiler.Compiler().compile(train_register_promote, sys.argv[1] if len(sys.argv) > 1 else "train_register_promote.yaml")

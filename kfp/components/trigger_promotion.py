"""KFP v2 lightweight component: ask modelgate to promote an MLflow model version.

POSTs ``/v1/promotions`` with a bearer token read from an environment variable, which on a cluster comes from a
Kubernetes secret (see ``kfp/pipelines/train_register_promote.py`` and docs/integrations.md). Starting is
idempotent on modelgate's side, so a retried step never starts a second promotion. Only the standard library
is used: the step needs no packages beyond the image's Python.
"""

from kfp import dsl

BASE_IMAGE = "python:3.11-slim"


@dsl.component(base_image=BASE_IMAGE)
def trigger_promotion(
    api_url: str,
    model_name: str,
    model_version: int,
    token_env: str = "MODELGATE_API_TOKEN",
    timeout_seconds: float = 30.0,
    attempts: int = 4,
    on_behalf_of: str = "",
) -> str:
    """Start (or find) the lifecycle of ``model_name`` version ``model_version``; returns its workflow id.

    ``on_behalf_of`` names the directory identity the run was for (the person who trained it): modelgate records
    them as a registrant, so under four-eyes they may not approve their own version.
    """
    import json
    import os
    import time
    import urllib.error
    import urllib.request

    token = os.environ.get(token_env, "").strip()
    if not token:
        raise RuntimeError(f"{token_env} is not set: mount the modelgate API token secret as this env var")
    if model_version < 1:
        raise ValueError(f"model_version must be a positive integer (got {model_version})")
    url = api_url.rstrip("/") + "/v1/promotions"
    payload = {"model": model_name, "version": int(model_version), "source": "kubeflow"}
    if on_behalf_of.strip():
        payload["onBehalfOf"] = on_behalf_of.strip()
    body = json.dumps(payload).encode()
    last = ""
    for attempt in range(1, max(1, attempts) + 1):
        req = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout_seconds) as res:
                answer = json.loads(res.read().decode() or "{}")
                print(f"modelgate: {model_name} v{model_version} -> {answer.get('workflowId')} (started={answer.get('started')})")
                return str(answer["workflowId"])
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            try:
                parsed = json.loads(detail)
                detail = f"{parsed.get('code')}: {parsed.get('message')}"
            except ValueError:
                pass
            # 4xx will not change on retry (bad token, bad input); 5xx and 429 might.
            if err.code < 500 and err.code != 429:
                raise RuntimeError(f"modelgate refused the promotion ({err.code} {detail})") from None
            last = f"{err.code} {detail}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            last = str(getattr(err, "reason", err))
        if attempt < attempts:
            time.sleep(min(2 ** attempt, 20))
    raise RuntimeError(f"modelgate did not accept the promotion after {attempts} attempts: {last}")

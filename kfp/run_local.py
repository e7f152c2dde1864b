"""Run the modelgate KFP pieces with kfp's local runner (no cluster): used by test/kfp.test.ts and handy to try
the integration by hand. The token is read from MODELGATE_API_TOKEN, as on a cluster.

  python kfp/run_local.py trigger  --api-url URL --model NAME --version N [--root DIR]
  python kfp/run_local.py pipeline --api-url URL --mlflow-uri URI --model NAME [--root DIR]

Prints one JSON line with the outcome last.
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "components"))
sys.path.insert(0, os.path.join(HERE, "pipelines"))

from kfp import local  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["trigger", "pipeline"])
    ap.add_argument("--api-url", required=True)
    ap.add_argument("--mlflow-uri")
    ap.add_argument("--model", required=True)
    ap.add_argument("--version", type=int)
    ap.add_argument("--on-behalf-of", default="", help="the directory identity the run was for (a registrant)")
    ap.add_argument("--root", default=None, help="pipeline root for local outputs (default: a temp dir)")
    args = ap.parse_args()
    root = args.root or tempfile.mkdtemp(prefix="modelgate-kfp-")
    # use_venv=False: run the step with this interpreter (kfp installed here) instead of a fresh venv per step.
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root, raise_on_error=True)
    if args.what == "trigger":
        from trigger_promotion import trigger_promotion

        task = trigger_promotion(api_url=args.api_url, model_name=args.model, model_version=args.version, on_behalf_of=args.on_behalf_of)
        print(json.dumps({"workflowId": task.output}))
    else:
        from train_register_promote import train_register_promote

        run = train_register_promote(mlflow_uri=args.mlflow_uri, modelgate_url=args.api_url, model_name=args.model)
        print(json.dumps({"workflowId": run.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The one-shot GPU run's dry run: every stage at tiny sizes, in a process that lacks what the
GPU machine lacks (bm3d, PyWavelets, TensorFlow, tfds, pypng), on a tiny data root."""

import json
import subprocess
import sys

import jax
import numpy as np
from flax import serialization

from dae import train
from dae.config import Config
from tests.test_benchmark import write_set
from tests.test_faults import REPO

MISSING = "bm3d,pywt,tensorflow,tensorflow_datasets,png"


def test_the_dry_run_runs_every_stage_and_brings_back_both_models(tmp_path):
    root = tmp_path / "datasets"
    write_set(root / "Train400", 4, (40, 40), grey=True, seed=0)
    write_set(root / "Set12", 2, (32, 40), grey=True, seed=10)
    write_set(root / "cbsd432", 4, (40, 48), grey=False, seed=20)
    write_set(root / "kodak24", 2, (32, 32), grey=False, seed=30)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_oneshot", "--dry-run",
                           "--without", MISSING, "--data-dir", str(root), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["versions"]["not_installed"]) >= {"bm3d", "PyWavelets", "tensorflow",
                                                         "tensorflow-datasets", "pypng"}
    assert summary["tests"]["exit"] == 0 and "1 passed" in summary["tests"]["summary"]
    rates = summary["throughput"]["images_per_s"]
    models = [k.split(" ")[0] for k in rates if k != "note"]
    assert models == ["dense", "conv", "unet_res", "unet_res:conditional=true"]
    assert all(v["ours"] > 0 for k, v in rates.items() if k != "note")
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size < 16 * 2**20 for p in out.iterdir())
    for colour, test_set in (("grey", "set12"), ("colour", "kodak24")):
        trained = summary[f"train_{colour}"]
        assert trained["psnr"]["unet_res:conditional=true"][test_set]["25"] > 10
        results = json.loads((out / f"{colour}_results.json").read_text())
        fields = {k: v for k, v in results["config"].items() if k != "models"}
        (tmp_path / "config.json").write_text(json.dumps({**fields, "model": trained["model"]}))
        config = Config.load(tmp_path / "config.json")
        template = train.create_train_state(jax.random.key(0), config)
        template = {"params": template.params, "batch_stats": template.batch_stats}
        restored = serialization.msgpack_restore((out / f"{colour}_variables.msgpack").read_bytes())
        shapes = lambda tree: jax.tree.map(np.shape, tree)
        assert shapes(restored["params"]) == shapes(jax.device_get(template["params"]))

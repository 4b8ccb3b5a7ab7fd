"""One ONNX Runtime path of benchmarks/cpu_paths.py, run in the venv that has that runtime.

    python benchmarks/cpu_paths_worker.py RUNTIME MODEL_DIR WORK_DIR PROMPTS.json RESULT.json

RUNTIME: ``onnxruntime`` or ``onnxruntime-int8`` (ONNX Runtime's dynamic int8 quantization of the MatMuls);
OpenVINO is the project's own openvino backend, timed by cpu_paths.py itself. The model is exported once into WORK_DIR by optimum's ONNX
exporter (``text-generation-with-past``: keys and values in and out, so a shared head can be fed back), and its
lm_head is cut to the two rows the score needs ("no", "yes"), as the project's backends do. This script imports
neither torch (except to export) nor the project: the runtimes' venvs hold other transformers versions.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def export(model_dir: Path, work: Path, yes_id: int, no_id: int) -> Path:
    """``work/reranker.onnx``: the model with keys and values in and out, logits only for [no, yes]."""
    out = work / "reranker.onnx"
    if out.exists():
        return out
    import onnx
    from onnx import numpy_helper
    from optimum.exporters.onnx import main_export

    raw = work / "raw"
    if not (raw / "model.onnx").exists():
        main_export(str(readable_by_v4(model_dir, work / "source")), output=str(raw),
                    task="text-generation-with-past", no_post_process=True)
    graph_model = onnx.load(str(raw / "model.onnx"))  # external data loaded too
    (node,) = [n for n in graph_model.graph.node if "logits" in n.output]
    weights = {init.name: init for init in graph_model.graph.initializer}
    head = numpy_helper.to_array(weights[node.input[1]])  # [hidden, vocab]
    cut = numpy_helper.from_array(np.ascontiguousarray(head[:, [no_id, yes_id]]), name=node.input[1] + "_no_yes")
    graph_model.graph.initializer.append(cut)
    node.input[1] = cut.name
    graph_model.graph.initializer.remove(weights[node.input[1].removesuffix("_no_yes")])
    (logits,) = [o for o in graph_model.graph.output if o.name == "logits"]
    logits.type.tensor_type.shape.dim[2].dim_value = 2
    onnx.save(graph_model, str(out), save_as_external_data=True, location="reranker.onnx.data")
    return out


def readable_by_v4(model_dir: Path, folder: Path) -> Path:
    """The model as transformers 4.x (optimum's exporter) reads it: a config saved by transformers 5 keeps
    ``rope_theta`` inside ``rope_parameters``, where 4.x does not look (it would use 10,000 instead of 1,000,000)."""
    folder.mkdir(parents=True, exist_ok=True)
    for file in model_dir.iterdir():
        if file.name != "config.json" and not (folder / file.name).exists():
            (folder / file.name).symlink_to(file.resolve())
    config = json.loads((model_dir / "config.json").read_text())
    config.setdefault("rope_theta", config.get("rope_parameters", {}).get("rope_theta", 10000.0))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def quantized(model: Path) -> Path:
    out = model.with_name("reranker-int8.onnx")
    if not out.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(model), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         use_external_data_format=True)
    return out


class Session:
    """A loaded graph: ``run(feeds) -> (logits, presents)``."""

    def __init__(self, runtime: str, model: Path, threads: int, kv_heads: int, head_dim: int):
        self.runtime = runtime
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        past = [i for i in self.session.get_inputs() if i.name.startswith("past_key_values")]
        self.past_names = [p.name for p in past]
        self.kv_heads, self.head_dim = kv_heads, head_dim

    def run(self, ids: np.ndarray, positions: np.ndarray, past: list[np.ndarray] | None):
        batch, width = ids.shape
        if past is None:
            past = [np.zeros((batch, self.kv_heads, 0, self.head_dim), np.float32)] * len(self.past_names)
        feeds = {"input_ids": ids, "position_ids": positions,
                 "attention_mask": np.ones((batch, past[0].shape[2] + width), np.int64)}
        feeds.update(zip(self.past_names, past))
        results = self.session.run(None, feeds)
        named = dict(zip(self.outputs, results))
        return named["logits"], [named[n.replace("past_key_values", "present")] for n in self.past_names]


def score(session: Session, prompts: list[list[int]], heads: list[int], share: bool) -> np.ndarray:
    """Log-odds for one query's prompts in one right-padded batch (the shared head computed once when ``share``)."""
    head = min(heads) if share else 0
    past = None
    if head:
        _, presents = session.run(np.array([prompts[0][:head]], np.int64), np.arange(head)[None], None)
        past = [np.repeat(p, len(prompts), axis=0) for p in presents]
    tails = [p[head:] for p in prompts]
    width = max(len(t) for t in tails)
    ids = np.zeros((len(tails), width), np.int64)
    for row, tail in enumerate(tails):
        ids[row, :len(tail)] = tail
    positions = np.broadcast_to(np.arange(head, head + width), ids.shape).copy()
    logits, _ = session.run(ids, positions, past)
    last = logits[np.arange(len(tails)), [len(t) - 1 for t in tails]]
    return (last[:, 1] - last[:, 0]).astype(np.float32)


def main(runtime: str, model_dir: str, work_dir: str, prompts_file: str, result_file: str) -> None:
    spec = json.loads(Path(prompts_file).read_text())
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = export(Path(model_dir), work, spec["yes_id"], spec["no_id"])
    if runtime == "onnxruntime-int8":
        model = quantized(model)
    exported = time.perf_counter() - started
    started = time.perf_counter()
    session = Session(runtime, model, spec["threads"], spec["kv_heads"], spec["head_dim"])
    loaded = time.perf_counter() - started
    rows = []
    for share in (False, True):
        score(session, spec["warmup"], spec["warmup_heads"], share)
        times, cpu, logodds = [], [], None
        for _ in range(spec["repeats"]):
            started, cpu_started = time.perf_counter(), time.process_time()
            logodds = score(session, spec["prompts"], spec["heads"], share)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            if sum(times) > spec["limit_s"]:
                break
        rows.append({"share_heads": share, "seconds": times, "median_s": statistics.median(times),
                     "cpu_seconds": cpu, "median_cpu_s": statistics.median(cpu), "logodds": logodds.tolist()})
    Path(result_file).write_text(json.dumps({"runtime": runtime, "export_s": exported, "load_s": loaded,
                                             "rows": rows}))


if __name__ == "__main__":
    main(*sys.argv[1:])

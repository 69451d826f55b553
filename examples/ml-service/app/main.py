"""A tiny inference API: the application layer of the example service.

The model is loaded at start-up (here a two-weight linear model; a real service reads its weights from a
mounted volume, not from the image), and /ready proves it can infer - what the image's HEALTHCHECK asks.
"""

import numpy as np
from fastapi import FastAPI, HTTPException

app = FastAPI()
MODEL: dict[str, np.ndarray] = {}


@app.on_event("startup")
def load_model() -> None:
    MODEL["weights"] = np.array([0.5, -0.25])


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ready")
def ready() -> dict[str, float]:
    weights = MODEL.get("weights")
    if weights is None:
        raise HTTPException(status_code=503, detail="model not loaded")
    return {"prediction": float(weights @ np.array([1.0, 2.0]))}

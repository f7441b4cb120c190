#!/usr/bin/env python3
"""The MLP against a standard implementation on a real data set, and its saved model
read back by numpy.

Usage: mlp_check.py GPUJOBS_BINARY WORKDIR

1. Exports scikit-learn's handwritten digits (1,797 real 8x8 scans that ship inside the
   package, 10 classes) to .npy: a stratified 75/25 split, features scaled to [0, 1].
2. Trains `gpujobs run mlp-train` on the training part with the held-out part as
   --x-test/--y-test, and scikit-learn's MLPClassifier configured the same way (one
   hidden ReLU layer, softmax cross-entropy, plain minibatch SGD: no momentum, no L2,
   constant learning rate, same batch size, epochs and learning rate), each for three
   seeds. Our mean held-out accuracy must be within 2 points of the reference's.
3. Runs `gpujobs run mlp-predict` with the first seed's saved model on the held-out part, and
   recomputes the forward pass in numpy from the safetensors file (as PyTorch's
   nn.Sequential would load it): probabilities within 1e-5, the same labels, and the
   accuracy the last epoch reported.
Exits non-zero with the reason when any of it does not hold.
"""

import json
import os
import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from mlp_numpy import predict_probs

HIDDEN, EPOCHS, BATCH, LR, SEEDS = 64, 40, 32, 0.02, 3


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def main():
    binary, work = sys.argv[1], sys.argv[2]
    path = lambda name: os.path.join(work, name)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    for name, a in [("Xtr", xtr), ("ytr", ytr), ("Xte", xte), ("yte", yte)]:
        np.save(path(f"{name}.npy"), a)

    ours_by_seed = []
    for seed in range(1, SEEDS + 1):
        model = path(f"model{seed}.safetensors")
        run = subprocess.run(
            [binary, "run", "mlp-train", "--x", path("Xtr.npy"), "--y", path("ytr.npy"),
             "--x-test", path("Xte.npy"), "--y-test", path("yte.npy"),
             "--hidden", str(HIDDEN), "--epochs", str(EPOCHS), "--batch", str(BATCH),
             "--lr", str(LR), "--seed", str(seed), "--save-model", model, "--json"],
            capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"mlp-train exited {run.returncode}: {run.stderr.strip()}")
        result = json.loads(run.stdout)
        if result["saved"] != [model]:
            fail(f"the JSON output does not name the saved model: {result.get('saved')}")
        ours_by_seed.append(result["epochs"][-1]["test_accuracy"])
    ours = float(np.mean(ours_by_seed))

    import warnings
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    reference = []
    for seed in range(SEEDS):
        clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="sgd",
                            alpha=0.0, batch_size=BATCH, learning_rate="constant",
                            learning_rate_init=LR, momentum=0.0, nesterovs_momentum=False,
                            max_iter=EPOCHS, shuffle=True, tol=0.0, n_iter_no_change=EPOCHS + 1,
                            random_state=seed)
        clf.fit(xtr, ytr)
        reference.append(clf.score(xte, yte))
    ref = float(np.mean(reference))
    seeds = lambda accs: ", ".join(f"{100 * a:.2f}" for a in accs)
    print(f"held-out accuracy after {EPOCHS} epochs, mean of {SEEDS} seeds: gpujobs "
          f"{100 * ours:.2f}% ({seeds(ours_by_seed)}), scikit-learn MLPClassifier "
          f"{100 * ref:.2f}% ({seeds(reference)}), {len(yte)} held-out digits")
    if abs(ours - ref) > 0.02:
        fail(f"held-out accuracy {ours:.4f} is more than 2 points from the reference's {ref:.4f}")

    run = subprocess.run(
        [binary, "run", "mlp-predict", "--model", path("model1.safetensors"),
         "--x", path("Xte.npy"), "--out", path("probs.npy"), "--labels-out", path("labels.npy"),
         "--json"], capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"mlp-predict exited {run.returncode}: {run.stderr.strip()}")
    probs, labels = np.load(path("probs.npy")), np.load(path("labels.npy"))
    expected = predict_probs(path("model1.safetensors"), xte)
    diff = float(np.abs(probs - expected).max())
    same = int((labels == expected.argmax(axis=1)).sum())
    accuracy = float((labels == yte).mean())
    print(f"mlp-predict vs numpy on the saved model: max |prob diff| {diff:.2e}, "
          f"{same}/{len(labels)} labels equal, accuracy {100 * accuracy:.2f}% "
          f"(training's last epoch reported {100 * ours_by_seed[0]:.2f}%)")
    if labels.dtype != np.int64 or probs.dtype != np.float32:
        fail(f"dtypes: labels {labels.dtype}, probabilities {probs.dtype}")
    if diff > 1e-5 or same < len(labels) - 1 or abs(accuracy - ours_by_seed[0]) > 1.5 / len(labels):
        fail("the saved model does not predict what training reported")
    print("mlp check: ok")


if __name__ == "__main__":
    main()

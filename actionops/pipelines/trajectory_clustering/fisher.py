"""Fisher vectors of local descriptors under a diagonal GMM (methods.md §5; Perronnin et al. 2010,
"improved" Fisher vectors).

For descriptors x_1..x_N (after PCA) and a GMM with weights w_k, means mu_k and diagonal variances
sigma_k^2, with posteriors gamma_nk:

    G_mu_k    = 1 / (N sqrt(w_k))   * sum_n gamma_nk (x_n - mu_k) / sigma_k
    G_sigma_k = 1 / (N sqrt(2 w_k)) * sum_n gamma_nk ((x_n - mu_k)^2 / sigma_k^2 - 1)

The vector [G_mu_1..G_mu_K, G_sigma_1..G_sigma_K] (2 K D values) is power-normalised
(sign(z) |z|^alpha) and L2-normalised. The GMM itself is fitted by scikit-learn
(`GaussianMixture(covariance_type="diag")`); only the encoding is written here, because no library
offers it. A fitted model carries the spec of the descriptors it was fitted on, and encoding
descriptors of another spec is refused by name (`check_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actionops.errors import DataError


def posteriors(x: np.ndarray, weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """gamma (N, K): each descriptor's posterior over the diagonal GMM's components."""
    x = np.asarray(x, np.float64)
    var = np.asarray(variances, np.float64)
    diff = x[:, None, :] - np.asarray(means, np.float64)[None]
    log_p = -0.5 * (np.sum(diff**2 / var[None], axis=2) + np.sum(np.log(2 * np.pi * var), axis=1)[None])
    log_p += np.log(np.asarray(weights, np.float64))[None]
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return p / p.sum(axis=1, keepdims=True)


def fisher_vector(x: np.ndarray, weights: np.ndarray, means: np.ndarray, variances: np.ndarray, *,
                  power: float = 0.5, l2: bool = True) -> np.ndarray:
    """(N, D) descriptors -> (2 K D,) improved Fisher vector. An empty set gives zeros."""
    weights, means, variances = (np.asarray(a, np.float64) for a in (weights, means, variances))
    k, d = means.shape
    x = np.asarray(x, np.float64).reshape(-1, d)
    if not len(x):
        return np.zeros(2 * k * d, np.float32)
    gamma = posteriors(x, weights, means, variances)  # (N, K)
    sigma = np.sqrt(variances)
    z = (x[:, None, :] - means[None]) / sigma[None]  # (N, K, D)
    n = len(x)
    g_mu = np.einsum("nk,nkd->kd", gamma, z) / (n * np.sqrt(weights)[:, None])
    g_sigma = np.einsum("nk,nkd->kd", gamma, z**2 - 1) / (n * np.sqrt(2 * weights)[:, None])
    fv = np.concatenate([g_mu.ravel(), g_sigma.ravel()])
    if power:
        fv = np.sign(fv) * np.abs(fv) ** power
    if l2:
        fv = fv / max(float(np.linalg.norm(fv)), 1e-12)
    return fv.astype(np.float32)


def check_spec(fitted: dict, given: dict, source: str = "descriptors") -> None:
    """Refuse descriptors of another spec than the model was fitted on, naming what differs."""
    if dict(given) != dict(fitted):
        changed = sorted(k for k in set(given) | set(fitted) if given.get(k) != fitted.get(k))
        raise DataError(f"{source} were computed with another descriptor spec than this Fisher model was fitted on "
                        f"(differs in {', '.join(changed)}: model {[fitted.get(k) for k in changed]}, "
                        f"given {[given.get(k) for k in changed]})",
                        "refit the PCA + GMM on these descriptors (`trajectories encode`), or recompute the "
                        "descriptors with the model's spec")


@dataclass
class FisherModel:
    """PCA + diagonal GMM fitted on a sample of descriptors of one `spec` (a dict naming the
    descriptor: its parts, their sizes, the trajectory length...)."""

    spec: dict
    pca_mean: np.ndarray
    pca_components: np.ndarray  # (d, D)
    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, d)
    variances: np.ndarray  # (K, d)
    info: dict = field(default_factory=dict)

    def check_spec(self, spec: dict, source: str = "descriptors") -> None:
        check_spec(self.spec, spec, source)

    def project(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.pca_mean) @ self.pca_components.T

    def encode(self, x: np.ndarray, spec: dict, source: str = "descriptors", **kw) -> np.ndarray:
        self.check_spec(spec, source)
        return fisher_vector(self.project(x), self.weights, self.means, self.variances, **kw)

    def save(self, path: str | Path) -> None:
        import json

        np.savez(path, spec=json.dumps(self.spec, sort_keys=True), info=json.dumps(self.info, sort_keys=True),
                 pca_mean=self.pca_mean, pca_components=self.pca_components, weights=self.weights,
                 means=self.means, variances=self.variances)

    @classmethod
    def load(cls, path: str | Path) -> FisherModel:
        import json

        with np.load(path, allow_pickle=False) as z:
            return cls(spec=json.loads(str(z["spec"])), info=json.loads(str(z["info"])), pca_mean=z["pca_mean"],
                       pca_components=z["pca_components"], weights=z["weights"], means=z["means"],
                       variances=z["variances"])


def fit_fisher_model(sample: np.ndarray, spec: dict, *, components: int = 256, keep: float | int = 0.9,
                     seed: int = 0) -> FisherModel:
    """PCA (a variance fraction `keep` < 1, or `keep` dimensions) then a diagonal GMM of `components`
    on `sample` (N, D); both from scikit-learn."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    sample = np.asarray(sample, np.float64)
    if len(sample) < components:
        raise DataError(f"{len(sample)} descriptors cannot fit a GMM of {components} components",
                        "lower the component count (trajectories.gmm_components) or give more video")
    n = keep if isinstance(keep, float) and keep < 1 else min(int(keep), sample.shape[1], len(sample))
    pca = PCA(n_components=n, random_state=seed).fit(sample)
    gmm = GaussianMixture(components, covariance_type="diag", random_state=seed, reg_covar=1e-4,
                          max_iter=100).fit(pca.transform(sample))
    return FisherModel(spec=dict(spec), pca_mean=pca.mean_, pca_components=pca.components_, weights=gmm.weights_,
                       means=gmm.means_, variances=gmm.covariances_,
                       info={"explained_variance": float(pca.explained_variance_ratio_.sum()),
                             "dims": int(pca.n_components_), "samples": int(len(sample))})


@dataclass
class PartsFisher:
    """One PCA + GMM per descriptor part (shape, HOF, MBHx, MBHy, as the reference does); a video's
    vector is the parts' Fisher vectors concatenated and L2-normalised. `spec["parts"]` gives each
    part's size, in order. On the 36 Weizmann videos (4 classes), per part with K=16 and half the
    dimensions kept, faiss k-means (k=4, 10 restarts) gives NMI 1.0 for each of 3 GMM x 3 k-means
    seeds; one model over the whole descriptor gave 0.75 at K=16 and 0.45 at K=64
    (benchmarks/trajectories_real.py)."""

    spec: dict
    parts: dict[str, FisherModel]

    def _bounds(self) -> dict[str, tuple[int, int]]:
        out, start = {}, 0
        for name, size in self.spec["parts"].items():
            out[name] = (start, start + size)
            start += size
        return out

    def encode(self, x: np.ndarray, spec: dict, source: str = "descriptors") -> np.ndarray:
        check_spec(self.spec, spec, source)
        bounds = self._bounds()
        fv = np.concatenate([m.encode(np.asarray(x)[:, slice(*bounds[n])], m.spec, source) for n, m in self.parts.items()])
        return (fv / max(float(np.linalg.norm(fv)), 1e-12)).astype(np.float32)

    def save(self, folder: str | Path) -> None:
        import json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "spec.json").write_text(json.dumps({"spec": self.spec, "parts": list(self.parts)}))  # part order matters
        for name, model in self.parts.items():
            model.save(folder / f"{name}.npz")

    @classmethod
    def load(cls, folder: str | Path) -> PartsFisher:
        import json

        folder = Path(folder)
        meta = json.loads((folder / "spec.json").read_text())
        return cls(spec=meta["spec"], parts={n: FisherModel.load(folder / f"{n}.npz") for n in meta["parts"]})


def fit_parts(sample: np.ndarray, spec: dict, *, parts: tuple[str, ...] | None = None, components: int = 16,
              keep: float = 0.5, variance: float | None = None, dims: int | None = None, seed: int = 0) -> PartsFisher:
    """A PCA + diagonal GMM per part of `spec["parts"]` (all, or those named in `parts`). The PCA keeps
    `dims` dimensions of each part when given, else the fewest explaining `variance` of its variance
    when given (a fraction < 1), else `keep` of its dimensions."""
    sizes, start, models = spec["parts"], 0, {}
    for name, size in sizes.items():
        if parts is None or name in parts:
            n: float | int = (min(int(dims), size) if dims else float(variance) if variance and variance < 1
                              else max(1, int(size * keep)))
            models[name] = fit_fisher_model(np.asarray(sample)[:, start:start + size], {"part": name, "size": size},
                                            components=components, keep=n, seed=seed)
        start += size
    if not models:
        raise DataError(f"none of the parts {list(parts or ())} is in the descriptor ({', '.join(sizes)})",
                        "name parts of the descriptor spec")
    return PartsFisher(spec=dict(spec), parts=models)

"""Settings of the offline commands (`perennial bootstrap` and `perennial replay`).

Flags win over ``PERENNIAL_*`` environment variables, which win over these defaults (laptop
defaults: registry under ``./.perennial/registry``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from streaming.settings import LoopSettings


class OfflineSettings(LoopSettings):
    """Bootstrap training and replay (the loop knobs come from `LoopSettings`)."""

    model_config = SettingsConfigDict(env_prefix="PERENNIAL_", extra="ignore")

    registry_dir: str = Field("./.perennial/registry", description="Model registry directory (local path or shared volume).")
    candidates: str = Field("", description="Candidate learners, comma separated: built-in names (classification: logreg, hat, arf, mlp; regression: linear, hat, arf, mlp), import paths module:factory, or names from the candidates file; empty: the file's entries, else the task's defaults (logreg,hat,arf or linear,hat,arf).")
    candidates_file: str = Field("", description="YAML or JSON file of named candidates, name: {factory, params} (see training.learners.candidates_file).")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="Share of bootstrap events held out for model selection.")
    augment_copies: int = Field(1, ge=0, description="Augmented copies of each training row (0 disables augmentation).")
    augment_noise: float = Field(0.05, ge=0, description="Gaussian noise, as a fraction of each feature's std, for tabular augmentation.")
    mlp_hidden_layers: str = Field("64,64", description="PyTorch candidate: hidden layer widths, comma separated.")
    mlp_activation: str = Field("relu", description="PyTorch candidate: activation (relu, tanh, gelu, leaky_relu).")
    mlp_lr: float = Field(1e-3, gt=0, description="PyTorch candidate: learning rate.")
    mlp_batch_size: int = Field(32, ge=1, description="PyTorch candidate: mini-batch size (offline and online fine-tuning).")
    mlp_dropout: float = Field(0.0, ge=0, lt=1, description="PyTorch candidate: dropout.")
    max_epochs: int = Field(30, ge=1, description="PyTorch candidate: maximum offline epochs (early stopping on validation loss).")
    patience: int = Field(4, ge=1, description="PyTorch candidate: epochs without validation improvement before stopping.")

    def mlp_params(self) -> dict:
        return {
            "hidden_layers": tuple(int(w) for w in self.mlp_hidden_layers.split(",") if w.strip()),
            "activation": self.mlp_activation,
            "lr": self.mlp_lr,
            "batch_size": self.mlp_batch_size,
            "dropout": self.mlp_dropout,
        }

    def bootstrap_config(self, image: bool = False, task=None):
        """``task``: the stream's when known (None: bootstrap infers it from the labels)."""
        from training.bootstrap import BootstrapConfig

        names = tuple(c.strip() for c in self.candidates.split(",") if c.strip())
        return BootstrapConfig(
            candidates=names or None, task=task, candidates_file=self.candidates_file or None,
            validation_fraction=self.validation_fraction, augment_copies=self.augment_copies,
            noise=self.augment_noise, image=image, mlp=self.mlp_params(),
            max_epochs=self.max_epochs, patience=self.patience,
        )


def apply_flags(settings: OfflineSettings, args, names: list[str]) -> OfflineSettings:
    """Flags given on the command line override environment and defaults."""
    updates = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    # validated like the environment is (model_copy would not check ranges)
    return type(settings).model_validate({**settings.model_dump(), **updates}) if updates else settings

"""Settings of the offline commands (`perennial bootstrap` and `perennial replay`).

Flags win over ``PERENNIAL_*`` environment variables, which win over these defaults (laptop
defaults: registry under ``./.perennial/registry``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OfflineSettings(BaseSettings):
    """Bootstrap training and replay."""

    model_config = SettingsConfigDict(env_prefix="PERENNIAL_", extra="ignore")

    registry: str = Field("./.perennial/registry", description="Model registry directory (local path or shared volume).")
    candidates: str = Field("logreg,hat,arf", description="Candidate learners, comma separated: logreg, hat, arf, mlp.")
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
    window: int = Field(1000, ge=10, description="Events per metrics window (replay plot, dashboards).")
    check_every: int = Field(100, ge=1, description="Events between two promotion / rollback tests.")
    refresh_every: int = Field(10000, ge=0, description="Events between champion snapshot republications (0 disables).")
    promotion_min_events: int = Field(1000, ge=0, description="Events a challenger must have seen before promotion.")
    promotion_margin: float = Field(0.01, ge=0, description="Accuracy gain (0..1) a challenger must show over the champion.")
    promotion_alpha: float = Field(0.001, gt=0, lt=1, description="Significance level of the paired McNemar test.")
    drift_delta: float = Field(0.002, gt=0, lt=1, description="ADWIN confidence: smaller means fewer, later drift alarms.")

    def mlp_params(self) -> dict:
        return {
            "hidden_layers": tuple(int(w) for w in self.mlp_hidden_layers.split(",") if w.strip()),
            "activation": self.mlp_activation,
            "lr": self.mlp_lr,
            "batch_size": self.mlp_batch_size,
            "dropout": self.mlp_dropout,
        }

    def bootstrap_config(self, image: bool = False):
        from training.bootstrap import BootstrapConfig

        return BootstrapConfig(
            candidates=tuple(c.strip() for c in self.candidates.split(",") if c.strip()),
            validation_fraction=self.validation_fraction, augment_copies=self.augment_copies,
            noise=self.augment_noise, image=image, mlp=self.mlp_params(),
            max_epochs=self.max_epochs, patience=self.patience,
        )

    def loop_config(self):
        from training.drift import DriftConfig
        from training.promotion import PromotionPolicy
        from training.system import LoopConfig

        return LoopConfig(
            window=self.window, check_every=self.check_every, refresh_every=self.refresh_every,
            policy=PromotionPolicy(min_events=self.promotion_min_events, margin=self.promotion_margin,
                                   alpha=self.promotion_alpha),
            drift=DriftConfig(delta=self.drift_delta),
        )


def apply_flags(settings: OfflineSettings, args, names: list[str]) -> OfflineSettings:
    """Flags given on the command line override environment and defaults."""
    updates = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return settings.model_copy(update=updates) if updates else settings

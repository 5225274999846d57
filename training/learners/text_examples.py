"""A text classifier factory of the project's own: River's TF-IDF and a linear model.

What a user's pipeline for text looks like, and what the test suite runs text through
(``--candidates training.learners.text_examples:tfidf_classifier``). The factory declares
``spec``, so it learns which features are text from the model spec.
"""

from __future__ import annotations

from river import compose, feature_extraction, linear_model, multiclass, optim

from training.spec import ModelSpec


def tfidf_classifier(spec: ModelSpec, lr: float = 0.5, ngram_max: int = 1):
    """TF-IDF of every text feature of ``spec`` (unigrams to ``ngram_max``-grams), then one
    logistic regression per class. Non-text features are ignored."""
    texts = spec.text_features
    if not texts:
        raise ValueError("tfidf_classifier reads text: the spec has no text feature (declare one with "
                         "kind: text, or --text COLUMN at bootstrap)")
    union = [feature_extraction.TFIDF(on=name, ngram_range=(1, ngram_max)) for name in texts]
    features = union[0] if len(union) == 1 else compose.TransformerUnion(*union)
    return features | multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optim.SGD(lr)))

"""Two text classifiers, as a user would write them: River pipelines over the review text.

Perennial calls each factory with the model spec (they declare ``spec``), so they find the
text feature by kind rather than by a hard-coded name, and hands them raw rows: the text as
a string, the other columns as the spec says.
"""

from __future__ import annotations

from river import feature_extraction, linear_model, multiclass, naive_bayes, optim


def _text_feature(spec) -> str:
    texts = spec.text_features
    if len(texts) != 1:
        raise ValueError(f"these models read one text feature; the spec has {list(texts)} "
                         "(declare the review column with --text review)")
    return texts[0]


def tfidf(spec, lr: float = 0.5, ngram_max: int = 2):
    """TF-IDF of unigrams and bigrams, then one logistic regression per class."""
    return (feature_extraction.TFIDF(on=_text_feature(spec), ngram_range=(1, ngram_max))
            | multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optim.SGD(lr))))


def bayes(spec, alpha: float = 1.0):
    """Word counts and multinomial naive Bayes: fast, a strong baseline for short texts."""
    return feature_extraction.BagOfWords(on=_text_feature(spec)) | naive_bayes.MultinomialNB(alpha=alpha)

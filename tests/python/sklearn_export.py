"""scikit-learn's fitted CountVectorizer + MultinomialNB as a maas PipelineSpec (what CreateModel imports)."""

from maas.discriminative.v1 import discriminative_pb2 as disc


def pipeline_spec_from_sklearn(cv, nb):
    """The PipelineSpec of a fitted default-parameter CountVectorizer `cv` and MultinomialNB `nb`."""
    spec = disc.PipelineSpec()
    spec.vectorizer.vocabulary.extend(cv.get_feature_names_out().tolist())
    spec.classifier.config.multinomial_nb.alpha = nb.alpha
    spec.classifier.config.multinomial_nb.fit_prior = nb.fit_prior
    spec.classifier.config.multinomial_nb.force_alpha = nb.force_alpha
    spec.classifier.classes.extend(nb.classes_.tolist())
    spec.classifier.class_count.extend(nb.class_count_.tolist())
    spec.classifier.class_log_prior.extend(nb.class_log_prior_.tolist())
    for field, value in (("feature_count", nb.feature_count_), ("feature_log_prob", nb.feature_log_prob_)):
        m = getattr(spec.classifier, field)
        m.rows, m.cols = value.shape
        m.values.extend(value.ravel().tolist())
    return spec

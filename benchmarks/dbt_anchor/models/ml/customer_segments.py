"""k-means for k = 2..10, the k with the best silhouette kept: each customer's segment."""

from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

FEATURES = ["age_scaled", "annual_income_k_scaled", "spending_score_scaled"]
SEED = 42


def model(dbt, session):
    features = dbt.ref("int_customer_features").df().sort_values("customer_id")
    matrix = features[FEATURES].to_numpy()
    best = None
    for k in range(2, 11):
        labels = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit_predict(matrix)
        score = silhouette_score(matrix, labels)
        if best is None or score > best[0]:
            best = (score, k, labels)
    _, k, labels = best
    return features.assign(segment_id=labels, k=k)[["customer_id", "segment_id", "k"]]

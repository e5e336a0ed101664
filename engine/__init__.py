"""The small framework behind the warehouse: config, loading, DAG, runner, quality, publish.

It knows nothing about customers or segments; the models in ``sql/`` and ``python_models/`` do.
"""

"""Learning to rank from judgments, offline (PyTorch and XGBoost; serving needs neither).

folds.py (which query lands where) · dataset.py (training rows, built by the search
pipeline) · xgboost_models.py · neural.py (the neural scorer) · query_encoder.py (the
query side of MiniLM, tuned) · variants.py (the models, as values) · fit.py (one fit
of everything `train` serves) · cross_validation.py (`evaluate`: that fit, held out)
· saving.py (a model version on disk).
"""

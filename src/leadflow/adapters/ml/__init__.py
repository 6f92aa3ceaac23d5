"""Machine learning with scikit-learn: labelled files as rows, leadflow's model, baselines."""

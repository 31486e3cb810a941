"""The retraining loop: read the live event log, prove a challenger, publish or refuse."""

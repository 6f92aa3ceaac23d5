"""`leadflow import contacts FILE --mapping MAP` and `leadflow demo`."""

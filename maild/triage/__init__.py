"""Learned triage: team, priority and tags predicted from a ticket's text (scikit-learn, in the
optional ``triage`` extra). ``data`` gathers labelled examples (resolved tickets or a JSONL file),
``model`` trains, evaluates, saves and loads the model, ``predict`` is what the rules ask."""

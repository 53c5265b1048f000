"""Game days: a human on call meets a hidden fault (game.py), drawn from the scenario
catalogue (catalogue.py: the `Scenario` objects the scenario modules define, each with
its runbook section and option). Above evidence/: a game day writes its bundle there."""

"""Monitoring as the on-call engineer sees it: alerts, probes, the status page and the runbook's communication rules."""

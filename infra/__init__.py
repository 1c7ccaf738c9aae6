"""The AWS deployment (CDK): one construct per concern, composed in ``infra.stack``."""

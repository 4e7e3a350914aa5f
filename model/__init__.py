"""The counting network and the SageMaker inference handler (the model issue)."""

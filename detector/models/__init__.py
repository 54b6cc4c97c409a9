"""The models the analyzers run: manifests, versions and deployments (promote, roll back), shadow runs."""

"""What a build leaves: parts as Parquet shards in the trainers' formats, the manifest that
accounts for every row, the dataset card with its plots, and publishing to the Hub."""

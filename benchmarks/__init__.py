"""``make bench``: figures compared against anchors (rclone, cp) measured in the same run."""

"""The dashboard's shared pieces, one module per concern: `data` (the dataset a page works
on), `jobs` (long work as plans on the engine's runner), `admin` (the study server's login),
`charts` (images and heatmaps), `results` and `compare` (what pages draw of a result),
`server` (the study server's guard around Streamlit)."""

"""The Streamlit dashboard (streamlit_app.py) and its data access (data.py)."""

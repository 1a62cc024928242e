pub fn render() -> crate::error::Result<String> {
    Ok(String::new())
}

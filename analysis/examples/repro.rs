fn main() {
    let p = std::env::args().nth(1).unwrap();
    let mut f = match oxyroot::RootFile::open(&p) {
        Ok(f) => f,
        Err(e) => {
            println!("open: {e}");
            return;
        }
    };
    let keys: Vec<String> = f.keys_name().map(|s| s.to_string()).collect();
    println!("keys {keys:?}");
    for k in keys {
        match f.get_tree(&k) {
            Ok(t) => {
                for b in t.branches() {
                    let _ = b.basket_locations();
                    let _ = b.stored_type_name();
                }
                println!("tree ok")
            }
            Err(e) => println!("tree err {e}"),
        }
    }
}

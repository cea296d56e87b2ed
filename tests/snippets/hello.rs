fn main() {
    println!("hello from rust, {} args", std::env::args().count());
}

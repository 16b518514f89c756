fn main() {
    println!("kiln: under construction");
}

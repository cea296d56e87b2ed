console.log("hello from assemblyscript");
